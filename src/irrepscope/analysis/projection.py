"""PHATE 2-D projections with guards for the inputs PHATE fails on (paper section 2).

Guards: NaN/inf features are an error naming the run and layer; features that are constant over
the molecules (an l the model does not use, e.g. all zeros) give an "unused irrep" result
instead of a crash; tiny sets lower ``knn`` (and skip landmarks) with a note.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np

from irrepscope.errors import DataError

MIN_POINTS = 4  # PHATE's diffusion needs at least a few neighbours per point


@dataclass
class Projection:
    """coords [n, 2] (None unless status == "ok"); status "ok" | "unused" | "too_few"; note."""

    name: str
    coords: np.ndarray | None
    status: str
    note: str = ""

    @property
    def ok(self) -> bool:
        """True when ``coords`` holds a projection."""
        return self.status == "ok"


class _ConvergenceFilter(logging.Filter):
    """Drops (and counts) PHATE's SGD-MDS 'may not have converged' log lines."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if "may not have converged" in record.getMessage():
            self.count += 1
            return False
        return True


def is_constant(features: np.ndarray, rtol: float = 1e-6) -> bool:
    """True if every column of features [n, d] is constant over rows (relative to its scale)."""
    if features.shape[0] < 2 or features.shape[1] == 0:
        return True
    spread = np.ptp(features, axis=0).max()
    scale = max(float(np.abs(features).max()), 1e-30)
    return bool(spread <= rtol * scale) or float(np.abs(features).max()) == 0.0


def phate_projection(features: np.ndarray, seed: int, name: str, *, knn: int = 5,
                     n_landmark: int = 200, n_pca: int = 50) -> Projection:
    """PHATE of features [n, d] -> Projection with coords [n, 2]; random_state=seed.

    Sets larger than ``n_landmark`` use PHATE's landmarks, chosen at random (seeded): spectral
    landmarking costs an SVD and k-means per projection, several times the rest on 2 cores.

    ``name`` names the run and layer (e.g. "runs/demo/l012_h16 block 4 raw l=1") in errors and
    notes. Raises DataError on NaN/inf; constant features give status "unused".
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise DataError(f"{name}: expected features of shape [n, d], got {x.shape}")
    bad = ~np.isfinite(x)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise DataError(f"{name}: features contain NaN/inf in {len(rows)} of {x.shape[0]} "
                        f"molecules (first rows {rows[:5].tolist()}); check the checkpoint")
    n = x.shape[0]
    if n < MIN_POINTS:
        return Projection(name, None, "too_few",
                          f"{n} molecules: PHATE needs at least {MIN_POINTS}; not projected")
    if is_constant(x):
        return Projection(name, None, "unused",
                          "unused irrep: features are constant over all molecules "
                          f"(max |x| = {np.abs(x).max():.3g}); nothing to project")
    notes = []
    if knn >= n - 1:
        new_knn = max(1, n - 3)
        notes.append(f"tiny set ({n} molecules): knn lowered from {knn} to {new_knn}")
        knn = new_knn
    landmarks = n_landmark if n_landmark and n > n_landmark else None
    coords = _run_phate(x, seed, knn, landmarks, min(n_pca, x.shape[1], n - 1))
    if not np.isfinite(coords).all():
        raise DataError(f"{name}: PHATE returned non-finite coordinates (knn={knn})")
    return Projection(name, coords, "ok", "; ".join(notes))


def _run_phate(x: np.ndarray, seed: int, knn: int, n_landmark: int | None,
               n_pca: int) -> np.ndarray:
    """PHATE coords [n, 2]; its SGD-MDS convergence chatter (harmless at these sizes) is muted."""
    import phate

    log_filter = _ConvergenceFilter()
    logger = logging.getLogger("graphtools")
    targets = [logger, *logger.handlers]
    for target in targets:
        target.addFilter(log_filter)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            op = phate.PHATE(n_components=2, knn=knn, n_landmark=n_landmark,
                             n_pca=n_pca if n_pca >= 2 else None, random_state=seed,
                             random_landmarking=n_landmark is not None, verbose=0, n_jobs=1)
            coords = np.asarray(op.fit_transform(x), dtype=np.float64)
    finally:
        for target in targets:
            target.removeFilter(log_filter)
    return coords
