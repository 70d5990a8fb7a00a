"""Kubernetes resource quantities as numbers: ``"500m"`` -> 0.5, ``"16Gi"`` -> 17179869184.

Used to check the operator's resource settings and to compare the amounts in the API server's
quota refusals (``requested: cpu=4, used: cpu=2, limited: cpu=5``). Exact (``Fraction``), pure,
no I/O. The API models only check the syntax (:data:`kubetune.api.v1alpha1.base.Quantity`).
"""

from __future__ import annotations

import re
from fractions import Fraction

_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))([eE][+-]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$")
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}


def parse(value: int | str) -> Fraction:
    """The quantity's value; ValueError naming the text when it is not a quantity."""
    text = str(value).strip()
    match = _QUANTITY.match(text)
    if not match:
        raise ValueError(f"{value!r} is not a Kubernetes quantity; write e.g. 4, '500m', '16Gi' or '1.5'")
    number, suffix = Fraction(match.group(1)), match.group(2) or ""
    if suffix in _BINARY:
        return number * Fraction(2 ** _BINARY[suffix])
    exponent = int(suffix[1:]) if suffix[:1] in ("e", "E") else _DECIMAL[suffix]
    return number * Fraction(10**exponent) if exponent >= 0 else number / Fraction(10**-exponent)
