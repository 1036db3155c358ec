"""Kubernetes quantities: every suffix against hand-worked values and against the pinned
``kubernetes.utils.parse_quantity``; garbage (including what that function is lax about) refused."""

from __future__ import annotations

from decimal import Decimal

import pytest
from kubernetes.utils import parse_quantity as kubernetes_parse_quantity

from ampscaler.quantity import parse_quantity, quantity_decimal

# raw, exact value worked by hand, plain number parse_quantity returns
VALID = [
    ("0", Decimal(0), 0),
    ("10", Decimal(10), 10),
    ("+7", Decimal(7), 7),
    ("-3", Decimal(-3), -3),
    (".5", Decimal("0.5"), 0.5),
    ("5.", Decimal(5), 5),
    ("1.25", Decimal("1.25"), 1.25),
    # decimal SI: powers of 1000
    ("0.5n", Decimal("5e-10"), 5e-10),
    ("3n", Decimal("3e-9"), 3e-9),
    ("100u", Decimal("0.0001"), 0.0001),
    ("500m", Decimal("0.5"), 0.5),
    ("1500m", Decimal("1.5"), 1.5),
    ("1m", Decimal("0.001"), 0.001),
    ("2k", Decimal(2000), 2000),
    ("1.5M", Decimal(1_500_000), 1_500_000),
    ("3G", Decimal(3 * 10**9), 3 * 10**9),
    ("2T", Decimal(2 * 10**12), 2 * 10**12),
    ("4P", Decimal(4 * 10**15), 4 * 10**15),
    ("1E", Decimal(10**18), 10**18),
    # binary SI: powers of 1024
    ("1Ki", Decimal(1024), 1024),
    ("0.5Ki", Decimal(512), 512),
    ("512Mi", Decimal(512 * 2**20), 536_870_912),
    ("1.5Gi", Decimal(3 * 2**29), 1_610_612_736),
    ("1Ti", Decimal(2**40), 2**40),
    ("1Pi", Decimal(2**50), 2**50),
    ("1Ei", Decimal(2**60), 2**60),
    ("2Ei", Decimal(2**61), 2**61),
    # decimal exponents
    ("1e3", Decimal(1000), 1000),
    ("1E3", Decimal(1000), 1000),
    ("2.5e+2", Decimal(250), 250),
    ("1e-3", Decimal("0.001"), 0.001),
    ("-1.5e1", Decimal(-15), -15),
]


@pytest.mark.parametrize(("raw", "exact", "number"), VALID, ids=[case[0] for case in VALID])
def test_quantity_matches_hand_worked_value_and_kubernetes_utils(
    raw: str, exact: Decimal, number: float
) -> None:
    assert quantity_decimal(raw) == exact
    assert quantity_decimal(raw) == kubernetes_parse_quantity(raw)
    got = parse_quantity(raw)
    assert got == number
    assert type(got) is type(number), "integral values come back as int, others as float"


GARBAGE = [
    "",
    "ten",
    "1 k",
    " 1",
    "1 ",
    "1KiB",
    "1ki",
    "1kk",
    "m",
    "Ki",
    "e3",
    "1e",
    "1e3.5",
    "1.2.3",
    "--1",
    "0x10",
    # kubernetes.utils.parse_quantity accepts these; the API server does not.
    "1K",
    "NaN",
    "Infinity",
    "-inf",
    "1_000",
    "1e3k",
]


@pytest.mark.parametrize("raw", GARBAGE, ids=[repr(raw) for raw in GARBAGE])
def test_quantity_garbage_is_refused_with_what_is_accepted(raw: str) -> None:
    with pytest.raises(
        ValueError, match=r"^not a quantity: .* \(expected a number with an optional suffix n, u, m"
    ):
        parse_quantity(raw)


@pytest.mark.parametrize("raw", [None, True, False, [1], {"a": 1}, b"1"], ids=repr)
def test_quantity_non_numbers_are_refused(raw: object) -> None:
    with pytest.raises(ValueError, match="not a quantity"):
        parse_quantity(raw)


@pytest.mark.parametrize("raw", [float("nan"), float("inf"), float("-inf")], ids=repr)
def test_quantity_non_finite_yaml_numbers_are_refused(raw: float) -> None:
    with pytest.raises(ValueError, match=r"not a quantity: .* \(expected a finite number\)"):
        parse_quantity(raw)


@pytest.mark.parametrize(("raw", "expected"), [(3, 3), (2.0, 2), (2.5, 2.5), (0.1, 0.1)], ids=repr)
def test_quantity_yaml_numbers_pass_through(raw: float, expected: float) -> None:
    got = parse_quantity(raw)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("raw", ["1e400", "-1e300", "1e301", "9" * 400])
def test_quantity_beyond_any_float_is_refused_not_overflowed(raw: str) -> None:
    # Found by the fuzz corpus: "1e400" became a 401-digit int that crashed float comparisons.
    with pytest.raises(ValueError, match="out of range"):
        parse_quantity(raw)
