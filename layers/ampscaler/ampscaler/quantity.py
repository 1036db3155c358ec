"""Kubernetes ``resource.Quantity`` parsing ("500m", "10", "1k", "2Ki", "1e3"), shared by the rule
parser's hints and the HPA importer."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Final

# Upstream grammar (k8s.io/apimachinery/pkg/api/resource/quantity.go):
#   <quantity> ::= <sign>? <digits> | <digits>.<digits> | <digits>. | .<digits>, then a suffix
#   <suffix>   ::= Ki | Mi | Gi | Ti | Pi | Ei | n | u | m | "" | k | M | G | T | P | E | e<int> | E<int>
# The alternation order matters: "1Ei" is binary, "1E3" an exponent and "1E" exa.
_QUANTITY: Final = re.compile(
    r"(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?P<suffix>[KMGTPE]i|[eE][+-]?\d+|[numkMGTPE])?"
)
# The same grammar, anchored and without named groups, for JSON Schema's (ECMA-262) "pattern".
QUANTITY_RE: Final = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([KMGTPE]i|[eE][+-]?\d+|[numkMGTPE])?$")
# Powers of 1000 (decimal SI) or 1024 (binary SI) for each suffix letter, as kubernetes.utils has them.
_EXPONENTS: Final = {"n": -3, "u": -2, "m": -1, "k": 1, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}
_EXPECTED: Final = (
    "a number with an optional suffix n, u, m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei "
    "or a decimal exponent such as e3"
)


def quantity_decimal(raw: str) -> Decimal:
    """The exact value of a Kubernetes quantity string.

    Upstream: ``ParseQuantity`` in k8s.io/apimachinery for what is accepted, and
    ``kubernetes.utils.parse_quantity`` (kubernetes==35.0.0) for the value: every string the API
    server accepts gives the same ``Decimal`` as that function (the table test compares them).
    That function is not called here because importing it loads the whole generated client
    (~0.3 s), which the rule validator's cold start does not need. Where it is laxer than the API
    server ("1K", "NaN", "Infinity", "1_000", " 1", "1e3k"), this parser rejects the string, as
    ``kubectl`` would.

    Parameters
    ----------
    raw
        The quantity as written, e.g. "500m", "1.5Gi", "2e3".

    Returns
    -------
    Decimal
        The exact value ("0.5n" is 5E-10, "1Ei" is 2**60).

    Raises
    ------
    ValueError
        ``raw`` is not a quantity; the message names what is accepted.
    """
    match = _QUANTITY.fullmatch(raw)
    if match is None:
        raise ValueError(f"not a quantity: {raw!r} (expected {_EXPECTED})")
    number, suffix = match.group("number"), match.group("suffix") or ""
    if not suffix:
        return Decimal(number)
    binary = suffix.endswith("i")
    if suffix[0] in "eE" and len(suffix) > 1 and not binary:
        # A decimal exponent ("e3", "E-2"); "Ei" is exbibytes, the old parser's mistake.
        return Decimal(number + suffix)
    base = 1024 if binary else 1000
    # Same expression as kubernetes.utils.parse_quantity, so rounding (if any) is identical.
    return Decimal(number) * (base ** Decimal(_EXPONENTS[suffix[0]]))


_LARGEST: Final = Decimal("1e300")


def parse_quantity(raw: object) -> float | int:
    """Parse a Kubernetes ``resource.Quantity`` ("500m", "10", "1k", "2Ki", "1e3") into a number.

    Strings are parsed exactly (see ``quantity_decimal``); the value is returned as an ``int``
    when it is integral so rule documents read naturally ("2k" -> 2000), else as the nearest
    float ("0.5n" -> 5e-10).

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
        ``raw`` is not a quantity (including booleans, NaN and infinities).
    """
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError(f"not a quantity: {raw!r} (expected {_EXPECTED})")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise ValueError(f"not a quantity: {raw!r} (expected a finite number)")
        return int(raw) if raw.is_integer() else raw
    value = quantity_decimal(raw)
    # Beyond this no float holds it, and a 400-digit int would overflow wherever it is compared.
    if value.copy_abs() >= _LARGEST:
        raise ValueError(f"not a quantity: {raw!r} is out of range (at most 1e300)")
    return int(value) if value == value.to_integral_value() else float(value)
