"""The last guard of "measures are finite or null" (bridge.pipeline._finite), fast path included."""
from __future__ import annotations

import math

import pytest

from bridge.pipeline import _finite


def test_a_finite_tuple_comes_back_as_the_very_object():
    series = (None, None) + tuple(float(k) / 7 for k in range(5000))
    assert _finite(series) is series


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_value_anywhere_becomes_none(bad):
    series = (None, 1.0, bad, 2.0)
    assert _finite(series) == (None, 1.0, None, 2.0)
    assert _finite(((1.0, bad), 3.0)) == ((1.0, None), 3.0)


def test_finite_floats_whose_sum_overflows_stay():
    big = (1.7e308, 1.7e308, -1.0)
    assert _finite(big) == big
