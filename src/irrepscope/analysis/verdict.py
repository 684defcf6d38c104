"""From analysis numbers to words: the one place that holds the rules and thresholds by which a
report calls an order l "switched off" (and, as they are added, "depended on", "informative").

Switched off: the root-mean-square of l's features is below ``SWITCHED_OFF_RELATIVE_SCALE``
times that of the same layer's l=0 features (or, in a layer without l=0, of its largest order).
Training can drive an order's weights towards zero without making its features exactly
constant; probes fitted on such features still report R^2 > 0, which says nothing about the
model, so their numbers are marked as computed on near-zero features.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

# An order whose features are a thousandth of the scalars' or less contributes, through any
# layer of ordinary weights, at most ~1e-3 of what the scalars do: that is "switched off".
SWITCHED_OFF_RELATIVE_SCALE = 1e-3


def feature_scale(features: np.ndarray) -> float:
    """Root-mean-square of all entries of features [n, d] (same unit as the features); 0 if empty."""
    x = np.asarray(features, dtype=np.float64)
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0


def relative_scales(per_l: Mapping[int, np.ndarray]) -> dict[int, float]:
    """{l: RMS of l's features / RMS of l=0's (or of the largest order's when l=0 is absent)}.

    NaN for every l when the reference scale is 0 (all features zero: nothing to compare with).
    """
    scales = {l: feature_scale(x) for l, x in per_l.items()}
    if not scales:
        return {}
    reference = scales[0] if 0 in scales else max(scales.values())
    if not reference > 0:
        return {l: float("nan") for l in scales}
    return {l: s / reference for l, s in scales.items()}


def is_switched_off(relative_scale: float) -> bool:
    """Whether an order with this relative scale (``relative_scales``) counts as switched off."""
    return bool(np.isfinite(relative_scale) and relative_scale < SWITCHED_OFF_RELATIVE_SCALE)
