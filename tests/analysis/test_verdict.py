"""The verdict rules: relative feature scales and the switched-off threshold."""

from __future__ import annotations

import numpy as np

from irrepscope.analysis import verdict as v


def test_relative_scales_against_scalars() -> None:
    rng = np.random.default_rng(0)
    per_l = {0: 3e-2 * rng.normal(size=(200, 16)), 1: 1e-12 * rng.normal(size=(200, 48)),
             2: 3e-2 * rng.normal(size=(200, 80))}
    rel = v.relative_scales(per_l)
    assert rel[0] == 1.0
    assert 1e-11 < rel[1] < 1e-10
    assert 0.8 < rel[2] < 1.25
    assert v.is_switched_off(rel[1]) and not v.is_switched_off(rel[2])


def test_relative_scales_without_scalars_and_all_zero() -> None:
    per_l = {1: np.full((5, 3), 2.0), 2: np.full((5, 5), 1e-4)}
    assert v.relative_scales(per_l) == {1: 1.0, 2: 5e-5}
    zero = v.relative_scales({0: np.zeros((4, 2)), 1: np.zeros((4, 3))})
    assert all(np.isnan(x) for x in zero.values())
    assert not v.is_switched_off(zero[1])


def test_threshold_boundary() -> None:
    assert v.is_switched_off(0.999 * v.SWITCHED_OFF_RELATIVE_SCALE)
    assert not v.is_switched_off(v.SWITCHED_OFF_RELATIVE_SCALE)
