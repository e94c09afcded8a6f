"""The quantity parser: exact values, Kubernetes rounding, and the same grammar as the CRD's schema pattern."""

from __future__ import annotations

import re
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard_operator.api import quantities
from dockyard_operator.errors import DockyardError

SUFFIXES = {
    "": Fraction(1),
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "k": Fraction(1000),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Fraction(1, 2)),
        ("2", Fraction(2)),
        ("0.5", Fraction(1, 2)),
        (".5", Fraction(1, 2)),
        ("1.", Fraction(1)),
        ("256Mi", Fraction(256 * 2**20)),
        ("1G", Fraction(10**9)),
        ("128974848", Fraction(128974848)),
        ("129e6", Fraction(129 * 10**6)),
        ("1E-3", Fraction(1, 1000)),
        ("1.5Gi", Fraction(3 * 2**29)),
    ],
)
def test_known_values(text: str, value: Fraction) -> None:
    """The examples from the Kubernetes documentation parse to their exact values."""
    assert quantities.parse_quantity(text) == value


@pytest.mark.parametrize("text", ["lots", "", "1.2.3", "-1", "+1", "1 Gi", "1gi", "1KiB", "Mi", "1e", "1e100", "0x10"])
def test_nonsense_is_rejected_with_a_clear_error(text: str) -> None:
    """Nonsense raises InvalidQuantityError (a DockyardError and a ValueError) naming the text and the format."""
    with pytest.raises(quantities.InvalidQuantityError, match="is not a quantity") as info:
        quantities.parse_quantity(text)
    assert isinstance(info.value, DockyardError)
    assert isinstance(info.value, ValueError)
    assert repr(text) in str(info.value)


def test_cpu_and_memory_conversions_round_up() -> None:
    """CPU goes to NanoCPUs and memory to bytes, rounding precision up as Kubernetes does."""
    assert quantities.cpu_to_nanocpus("500m") == 500_000_000
    assert quantities.cpu_to_nanocpus("2") == 2_000_000_000
    assert quantities.cpu_to_nanocpus("1n") == 1
    assert quantities.cpu_to_nanocpus("0.1n") == 1
    assert quantities.memory_to_bytes("256Mi") == 268435456
    assert quantities.memory_to_bytes("1G") == 1_000_000_000
    assert quantities.memory_to_bytes("0.5") == 1
    assert quantities.memory_to_bytes("1500m") == 2


@pytest.mark.parametrize("text", ["0", "0m", "0.0Gi", "0e5"])
def test_zero_limits_are_rejected(text: str) -> None:
    """Docker reads 0 as "unlimited"; a zero limit is refused rather than silently meaning the opposite."""
    with pytest.raises(quantities.InvalidQuantityError, match="greater than zero"):
        quantities.cpu_to_nanocpus(text)
    with pytest.raises(quantities.InvalidQuantityError, match="greater than zero"):
        quantities.memory_to_bytes(text)


def test_values_beyond_int64_are_rejected() -> None:
    """Docker's fields are int64; larger values are an error, not an overflow."""
    with pytest.raises(quantities.InvalidQuantityError, match="too large"):
        quantities.memory_to_bytes("9Ei")
    with pytest.raises(quantities.InvalidQuantityError, match="too large"):
        quantities.cpu_to_nanocpus("1e18")


digits = st.text(alphabet="0123456789", min_size=1, max_size=8)
numbers = st.one_of(
    digits,
    st.builds(lambda a, b: f"{a}.{b}", digits, st.text(alphabet="0123456789", max_size=6)),
    st.builds(lambda b: f".{b}", digits),
)


@given(number=numbers, suffix=st.sampled_from(sorted(SUFFIXES)))
def test_number_with_suffix_parses_to_number_times_multiplier(number: str, suffix: str) -> None:
    """For every number and SI/binary suffix, the value is exactly number x multiplier."""
    assert quantities.parse_quantity(number + suffix) == Fraction(number) * SUFFIXES[suffix]


@given(number=numbers, sign=st.sampled_from(["", "+", "-"]), exponent=st.integers(0, 99), e=st.sampled_from("eE"))
def test_decimal_exponents(number: str, sign: str, exponent: int, e: str) -> None:
    """1e3, 1E+3, 1e-3: a decimal exponent of up to two digits scales by a power of ten."""
    power = Fraction(10) ** (-exponent if sign == "-" else exponent)
    assert quantities.parse_quantity(f"{number}{e}{sign}{exponent}") == Fraction(number) * power


@given(text=st.text(alphabet="0123456789.+-eEkKmMGgiIunTPx ", max_size=12))
def test_parser_accepts_exactly_what_the_schema_pattern_accepts(text: str) -> None:
    """The CRD's pattern (enforced by the API server) and the parser agree on every string."""
    matches = re.fullmatch(quantities.QUANTITY_PATTERN, text) is not None
    try:
        quantities.parse_quantity(text)
    except quantities.InvalidQuantityError:
        parsed = False
    else:
        parsed = True
    assert matches == parsed


@given(value=st.integers(min_value=1, max_value=2**62))
def test_integers_are_bytes_and_cores(value: int) -> None:
    """A plain integer is that many bytes, or that many cores."""
    assert quantities.memory_to_bytes(str(value)) == value
    if value <= 9 * 10**9:
        assert quantities.cpu_to_nanocpus(str(value)) == value * 10**9
