"""PHATE guards: constant/zero -> 'unused', NaN -> error naming the layer, tiny sets lower knn."""

from __future__ import annotations

import numpy as np
import pytest

from irrepscope.analysis.projection import is_constant, phate_projection
from irrepscope.errors import DataError


def _clusters(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=8.0, size=(3, 6))
    return centres[np.arange(n) % 3] + rng.normal(size=(n, 6))


def test_projection_shape_and_determinism() -> None:
    x = _clusters(45)
    a = phate_projection(x, seed=7, name="run block 4 raw l=0", n_landmark=20)
    b = phate_projection(x, seed=7, name="run block 4 raw l=0", n_landmark=20)
    assert a.ok and a.coords.shape == (45, 2) and np.isfinite(a.coords).all()
    np.testing.assert_allclose(a.coords, b.coords)
    # PHATE keeps well separated clusters apart: same-cluster neighbours dominate
    labels = np.arange(45) % 3
    d = ((a.coords[:, None] - a.coords[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert (labels[d.argmin(1)] == labels).mean() > 0.9


@pytest.mark.parametrize("fill", [0.0, 3.5])
def test_constant_features_are_reported_unused(fill: float) -> None:
    proj = phate_projection(np.full((40, 5), fill), seed=0, name="r block 4 raw l=2")
    assert proj.status == "unused" and proj.coords is None and "unused irrep" in proj.note


def test_nearly_constant_counts_as_constant() -> None:
    x = np.ones((30, 4))
    x[3, 1] += 1e-12
    assert is_constant(x)
    x[3, 1] += 1e-3
    assert not is_constant(x)


def test_nan_is_an_error_naming_run_and_layer() -> None:
    x = _clusters(30)
    x[4, 2] = np.nan
    with pytest.raises(DataError, match="runs/x block 3 invariant l=1"):
        phate_projection(x, seed=0, name="runs/x block 3 invariant l=1")


def test_tiny_sets_lower_knn_with_a_note() -> None:
    proj = phate_projection(_clusters(6), seed=0, name="tiny", knn=5)
    assert proj.ok and proj.coords.shape == (6, 2)
    assert "knn lowered from 5" in proj.note


def test_too_few_points() -> None:
    proj = phate_projection(np.random.default_rng(0).normal(size=(3, 4)), seed=0, name="t")
    assert proj.status == "too_few" and proj.coords is None
