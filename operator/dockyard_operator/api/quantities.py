"""Kubernetes resource quantities ("500m", "2", "0.5", "256Mi", "1G", "128974848"), parsed exactly.

Pure and dependency-free. The grammar is a non-negative subset of Kubernetes' ``resource.Quantity``::

    quantity ::= number suffix?
    number   ::= digits | digits "." digits? | "." digits
    suffix   ::= "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei"         (binary, powers of 1024)
               | "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E"   (decimal SI)
               | ("e" | "E") ("+" | "-")? digit digit?            (decimal exponent)

Differences from Kubernetes, on purpose: no sign (a negative limit is nonsense, so "-1" is rejected at admission
instead of later), and the exponent has at most two digits (a limit of "1e999999" would otherwise make exact
arithmetic explode; nothing real needs more than e18).

:data:`QUANTITY_PATTERN` is the same grammar as a regular expression. It goes into the CRD schema, so the API server
rejects nonsense at admission with the same rule this parser applies (a property test checks they agree).
"""

import math
import re
from fractions import Fraction
from typing import Final

from dockyard_operator.errors import InvalidSpecError

# RE2 (the API server) and Python's re both accept this: plain groups only, no look-around.
QUANTITY_PATTERN: Final = r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?[0-9]{1,2}))?$"
QUANTITY_MAX_LENGTH: Final = 64
_QUANTITY_RE: Final = re.compile(QUANTITY_PATTERN)

_BINARY_SUFFIXES: Final[dict[str, int]] = {
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "Pi": 1024**5,
    "Ei": 1024**6,
}
_DECIMAL_SUFFIXES: Final[dict[str, Fraction]] = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
# Docker takes NanoCPUs and Memory as int64.
_INT64_MAX: Final = 2**63 - 1


class InvalidQuantityError(InvalidSpecError):
    """Text that is not a quantity, or a quantity that does not fit what it is used for."""


def parse_quantity(text: str) -> Fraction:
    """Return the exact value of a quantity ("1.5Gi" -> 1610612736, "500m" -> 1/2)."""
    if len(text) > QUANTITY_MAX_LENGTH or _QUANTITY_RE.fullmatch(text) is None:
        raise InvalidQuantityError(
            f"{text[:QUANTITY_MAX_LENGTH]!r} is not a quantity: expected a non-negative number with an optional "
            'suffix, like "500m", "2", "0.5", "256Mi", "1G" or "1e9"'
        )
    mantissa, suffix = _split(text)
    value = Fraction(mantissa)
    if suffix in _BINARY_SUFFIXES:
        return value * _BINARY_SUFFIXES[suffix]
    if suffix in _DECIMAL_SUFFIXES:
        return value * _DECIMAL_SUFFIXES[suffix]
    # The regular expression left only a decimal exponent: e/E, optional sign, one or two digits.
    return value * Fraction(10) ** int(suffix[1:])


def _split(text: str) -> tuple[str, str]:
    """Split a quantity that matched the grammar into its number and suffix."""
    end = len(text)
    for index, char in enumerate(text):
        if not (char.isdigit() or char == "."):
            end = index
            break
    return text[:end], text[end:]


def cpu_to_nanocpus(text: str) -> int:
    """Return a CPU quantity in Docker's NanoCPUs (1 CPU = 10^9), rounded up like Kubernetes rounds precision.

    Zero is rejected: Docker reads NanoCPUs=0 as "no limit", which is the opposite of what "0" says.
    """
    nanocpus = math.ceil(parse_quantity(text) * 10**9)
    if nanocpus <= 0:
        raise InvalidQuantityError(f"cpu {text!r} must be greater than zero (omit the limit for no limit)")
    if nanocpus > _INT64_MAX:
        raise InvalidQuantityError(f"cpu {text!r} is too large")
    return nanocpus


def memory_to_bytes(text: str) -> int:
    """Return a memory quantity in bytes, rounding a fractional byte up ("0.5" -> 1), as Kubernetes does.

    Zero is rejected for the same reason as for CPU: Docker reads Memory=0 as "no limit".
    """
    size = math.ceil(parse_quantity(text))
    if size <= 0:
        raise InvalidQuantityError(f"memory {text!r} must be greater than zero (omit the limit for no limit)")
    if size > _INT64_MAX:
        raise InvalidQuantityError(f"memory {text!r} is too large")
    return size
