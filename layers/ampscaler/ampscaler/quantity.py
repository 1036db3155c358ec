"""Kubernetes ``resource.Quantity`` parsing ("500m", "10", "1k", "2Ki", "1e3"), shared by the rule
parser's hints and the HPA importer."""

from __future__ import annotations

import re
from typing import Final

_QUANTITY: Final = re.compile(
    r"^([+-]?(?:\d+\.?\d*|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+|n|u|m|k|M|G|T|P|E)?$"
)
_SUFFIX_FACTOR: Final = {
    "": 1.0,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}


def parse_quantity(raw: object) -> float | int:
    """Parse a Kubernetes ``resource.Quantity`` ("500m", "10", "1k", "2Ki", "1e3") into a number.

    Upstream: k8s.io/apimachinery/pkg/api/resource ParseQuantity (the same suffix set; the
    value is returned as an exact int when integral so rule documents read naturally).

    Parameters
    ----------
    raw
        The manifest value: a string quantity or a YAML number.

    Returns
    -------
    float | int
        The value as a plain number.

    Raises
    ------
    ValueError
        ``raw`` is not a quantity.
    """
    if isinstance(raw, bool):
        raise ValueError(f"not a quantity: {raw!r}")
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        match = _QUANTITY.match(raw.strip())
        if match is None:
            raise ValueError(f"not a quantity: {raw!r}")
        number, suffix = match.group(1), match.group(2) or ""
        if suffix[:1] in ("e", "E") and len(suffix) > 1:
            value = float(number + suffix)
        else:
            value = float(number) * _SUFFIX_FACTOR[suffix]
    else:
        raise ValueError(f"not a quantity: {raw!r}")
    # Round away binary float noise such as 0.1 * 3 so targets print as written.
    value = round(value, 9)
    return int(value) if value.is_integer() else value
