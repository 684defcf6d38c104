"""Numbers over seeds: mean ± sample standard deviation, and a paired t-test of two configs.

The standard deviation is the sample one (ddof=1, NaN for a single seed). Two configs are
compared on the seeds they share (the same seed value on the same split pairs a run of each):
the paired t-test takes the per-seed differences d = a - b, t = mean(d) / (std(d) / sqrt(n)),
n - 1 degrees of freedom, two-sided p-value. The difference "exceeds the seed spread" when
p < ``ALPHA``; with fewer than 2 pairs it cannot be decided.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05  # two-sided significance level of the paired t-test


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """(mean, sample std with ddof=1) of ``values``; std is NaN for fewer than 2 values."""
    array = np.asarray(values, dtype=np.float64)
    if not len(array):
        return math.nan, math.nan
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else math.nan


def format_mean_std(values: Sequence[float], digits: int = 4) -> str:
    """``"0.1234 ± 0.0056"`` over seeds; a single value alone; ``"n/a"`` for none or NaN."""
    finite = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not finite or len(finite) < len(values):
        return "n/a"
    mean, std = mean_std(finite)
    return f"{mean:.{digits}g}" if len(finite) == 1 else f"{mean:.{digits}g} ± {std:.2g}"


def format_per_seed(values: Mapping[int, float], digits: int = 4) -> str:
    """``"3: 0.12, 7: 0.13"``: each seed's value, in seed order."""
    return ", ".join(f"{seed}: {value:.{digits}g}" for seed, value in sorted(values.items()))


@dataclass(frozen=True)
class PairedTest:
    """A paired t-test of a - b over shared seeds (eV² for test MSE).

    ``seeds``: the pairs' seeds; ``mean``/``std``: of the differences (std ddof=1);
    ``t``, ``df``, ``p`` (two-sided): NaN when fewer than 2 pairs; ``alpha``: threshold on p.
    """

    seeds: tuple[int, ...]
    mean: float
    std: float
    t: float
    df: int
    p: float
    alpha: float = ALPHA

    @property
    def n(self) -> int:
        """Number of paired seeds."""
        return len(self.seeds)

    @property
    def verdict(self) -> str:
        """'exceeds seed spread', 'within seed spread' or 'cannot be decided'."""
        if self.n < 2:
            return "cannot be decided"
        return "exceeds seed spread" if self.p < self.alpha else "within seed spread"

    def statement(self, name_a: str, name_b: str, quantity: str = "test MSE",
                  unit: str = "eV²") -> str:
        """One sentence: the test, n, mean and std of the difference, p, and the verdict."""
        if self.n < 2:
            shared = f"{self.n} shared seed{'s' if self.n != 1 else ''}"
            return (f"{name_a} vs {name_b}: whether the {quantity} difference exceeds the seed "
                    f"spread cannot be decided: {shared} ({_seed_list(self.seeds)}), and a "
                    f"paired t-test needs at least 2; train both with the same --seeds N, N >= 2")
        comparison = "<" if self.p < self.alpha else "≥"
        return (f"{name_a} vs {name_b}: {quantity} difference ({name_a} − {name_b}) mean "
                f"{self.mean:.4g} {unit}, std {self.std:.2g} {unit} over n={self.n} paired "
                f"seeds ({_seed_list(self.seeds)}); paired t-test t={self.t:.3g}, df={self.df}, "
                f"two-sided p={self.p:.3g}: {self.verdict} (p {comparison} {self.alpha:g}).")


def _seed_list(seeds: Sequence[int]) -> str:
    return ", ".join(map(str, seeds)) if seeds else "none"


def paired_t_test(a: Mapping[int, float], b: Mapping[int, float],
                  alpha: float = ALPHA) -> PairedTest:
    """Paired t-test of the per-seed values ``a`` and ``b`` ({seed: value}) on shared seeds."""
    seeds = tuple(sorted(set(a) & set(b)))
    diffs = np.array([a[s] - b[s] for s in seeds], dtype=np.float64)
    mean, std = mean_std(diffs)
    if len(seeds) < 2:
        return PairedTest(seeds, mean, std, math.nan, max(len(seeds) - 1, 0), math.nan, alpha)
    df = len(seeds) - 1
    if std == 0.0:  # identical differences: no spread, so any non-zero mean is decisive
        t = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
        p = 1.0 if mean == 0.0 else 0.0
    else:
        t = mean / (std / math.sqrt(len(seeds)))
        p = float(2.0 * stats.t.sf(abs(t), df))
    return PairedTest(seeds, mean, std, t, df, p, alpha)
