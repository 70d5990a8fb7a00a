"""Resource quantities as numbers, as the API server reads them."""

from __future__ import annotations

import re
from fractions import Fraction

import pytest

from kubetune.controllers import quantities


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4", Fraction(4)),
        (4, Fraction(4)),
        ("500m", Fraction(1, 2)),
        ("1.5", Fraction(3, 2)),
        ("16Gi", Fraction(16 * 2**30)),
        ("2k", Fraction(2000)),
        ("1e3", Fraction(1000)),
        ("100Mi", Fraction(100 * 2**20)),
    ],
)
def test_quantities_read_as_the_api_server_reads_them(text: str | int, value: Fraction) -> None:
    assert quantities.parse(text) == value


def test_text_that_is_not_a_quantity_is_refused_with_an_example() -> None:
    with pytest.raises(ValueError, match=re.escape("'4 cores' is not a Kubernetes quantity; write e.g. 4")):
        quantities.parse("4 cores")
