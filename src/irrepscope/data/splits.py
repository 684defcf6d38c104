"""Seeded train/val/test split of a data set, saved with the run (``split.npz``) and reloaded.

One permutation of ``range(num_items)`` from ``numpy.random.default_rng(seed)``; with ``subset``
the first N positions of that order are kept; then the order is cut into train, val, test with
sizes ``round(fraction * n)`` for val and test (at least one each) and the rest for train.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from irrepscope.errors import DataError
from irrepscope.files import atomic_output

DEFAULT_SEED = 21616
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)


@dataclass(frozen=True)
class Split:
    """Positions into the data set (int64 arrays), and how they were made."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    seed: int
    fractions: tuple[float, float, float]
    subset: int | None = None

    def __len__(self) -> int:
        return len(self.train) + len(self.val) + len(self.test)


def make_split(num_items: int, seed: int | None = DEFAULT_SEED,
               fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
               subset: int | None = None) -> Split:
    """Disjoint train/val/test positions covering ``subset or num_items`` items of the data set."""
    seed = DEFAULT_SEED if seed is None else int(seed)
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
        raise DataError(f"split fractions must be three positive numbers summing to 1, "
                        f"got {fractions}")
    if subset is not None:
        subset = int(subset)
        if subset <= 0:
            raise DataError(f"subset must be a positive number of molecules, got {subset} "
                            f"(an empty subset)")
        if subset > num_items:
            raise DataError(f"subset of {subset} molecules asked from a data set of "
                            f"{num_items}")
    order = np.random.default_rng(seed).permutation(num_items).astype(np.int64)
    n = num_items if subset is None else subset
    if n < 3:
        raise DataError(f"{n} molecules cannot be split into non-empty train, val and test sets")
    order = order[:n]
    n_val = max(1, int(round(fractions[1] * n)))
    n_test = max(1, int(round(fractions[2] * n)))
    n_train = n - n_val - n_test
    if n_train < 1:
        raise DataError(f"{n} molecules leave no training set with fractions {fractions}")
    return Split(order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:],
                 seed, fractions, subset)


def save_split(split: Split, path: str | Path) -> Path:
    """Write ``split`` to ``path`` (.npz; loaded without pickle), atomically."""
    path = Path(path)
    with atomic_output(path) as f:  # a file object: numpy appends no '.npz' to the name
        np.savez(f, train=split.train, val=split.val, test=split.test,
                 seed=np.int64(split.seed), fractions=np.asarray(split.fractions, np.float64),
                 subset=np.int64(-1 if split.subset is None else split.subset))
    return path


def load_split(path: str | Path) -> Split:
    """The split saved at ``path``; ``DataError`` if it is missing or not a split file."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            subset = int(f["subset"])
            return Split(f["train"].astype(np.int64), f["val"].astype(np.int64),
                         f["test"].astype(np.int64), int(f["seed"]),
                         tuple(float(x) for x in f["fractions"]),
                         None if subset < 0 else subset)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
        raise DataError(f"{path} is not a readable split file ({err})") from err
