from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.normalize.units import UNITS, UnitError, conversion


@pytest.mark.parametrize(
    ("source", "target", "value", "expected"),
    [
        ("degF", "degC", 212.0, 100.0),
        ("degF", "degC", 32.0, 0.0),
        ("°F", "°C", -40.0, -40.0),
        ("degC", "degF", 100.0, 212.0),
        ("K", "degC", 273.15, 0.0),
        ("psi", "bar", 14.5037738, 1.0),
        ("bar", "psi", 1.0, 14.5037738),
        ("kPa", "bar", 250.0, 2.5),
        ("in/s", "mm/s", 1.0, 25.4),
        ("ips", "mm/s", 0.5, 12.7),
        ("gpm", "l/min", 1.0, 3.785411784),
        ("m3/h", "l/min", 6.0, 100.0),
        ("Hz", "rpm", 50.0, 3000.0),
        ("mm/s", "mm/s", 3.3, 3.3),
    ],
)
def test_conversions(source: str, target: str, value: float, expected: float) -> None:
    assert conversion(source, target)(value) == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_same_unit_under_another_name_is_the_identity() -> None:
    assert conversion("°C", "degC").identity


@pytest.mark.parametrize(("source", "target"), [("degC", "bar"), ("psi", "mm/s")])
def test_different_dimensions_do_not_convert(source: str, target: str) -> None:
    with pytest.raises(UnitError, match="cannot convert"):
        conversion(source, target)


def test_unknown_unit_is_named() -> None:
    with pytest.raises(UnitError, match="'furlong'"):
        conversion("furlong", "mm")


same_dimension = st.sampled_from(sorted(UNITS)).flatmap(
    lambda a: st.tuples(
        st.just(a),
        st.sampled_from([b for b in sorted(UNITS) if UNITS[b].dimension == UNITS[a].dimension]),
    )
)


@given(same_dimension, st.floats(min_value=-1e6, max_value=1e6))
def test_there_and_back_again(pair: tuple[str, str], value: float) -> None:
    a, b = pair
    assert conversion(b, a)(conversion(a, b)(value)) == pytest.approx(value, rel=1e-9, abs=1e-6)
