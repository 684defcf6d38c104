"""``train.targets``: which targets a run trains and the weight of each in the loss.

The loss is ``sum_t weight_t * loss_t`` over the configured targets, each ``loss_t`` a mean
squared error in units of that target's scale (``irrepscope.train.targets``). A weight of 0
keeps a target's head and metrics but does not train it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from irrepscope.data.targets import TARGETS, UNITS
from irrepscope.errors import ConfigError, quoted


def check_target_weights(targets: Any) -> dict[str, float]:
    """Validated ``{target: weight}`` in ``TARGETS`` order; ``ConfigError`` naming the fault."""
    example = "{energy: 1.0, dipole: 0.1}"
    if not isinstance(targets, Mapping) or not targets:
        raise ConfigError(f"train.targets must be a non-empty mapping of target to loss weight, "
                          f"like {example}; got {quoted(targets)}")
    unknown = [str(t) for t in targets if t not in TARGETS]
    if unknown:
        raise ConfigError(f"train.targets: unknown target(s) {', '.join(unknown)}; valid: "
                          + ", ".join(f"{t} ({UNITS[t]})" for t in TARGETS))
    out = {}
    for name in TARGETS:
        if name not in targets:
            continue
        weight = targets[name]
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) \
                or not math.isfinite(weight):
            raise ConfigError(f"train.targets.{name} must be a finite number, got {quoted(weight)}")
        if weight < 0:
            raise ConfigError(f"train.targets.{name} is {weight}: loss weights must be >= 0 "
                              f"(0 keeps the target's metrics without training it)")
        out[name] = float(weight)
    if not any(out.values()):
        raise ConfigError(f"train.targets: every loss weight is 0, so nothing would be trained; "
                          f"give at least one target a positive weight, like {example}")
    return out
