"""Learning-rate schedules (``train.lr_schedule``), built for Lightning's ``configure_optimizers``.

- ``constant`` (the paper's): ``train.lr`` throughout, after an optional linear warm-up of
  ``train.warmup_steps`` optimizer steps.
- ``warmup_cosine``: linear warm-up from 0 to ``train.lr`` over ``warmup_steps`` steps, then
  cosine decay to ``train.min_lr`` at the run's last step (``max_epochs`` x steps per epoch;
  resuming with a larger ``max_epochs`` stretches the decay over the new total).
- ``reduce_on_plateau``: multiply the lr by ``plateau_factor`` when ``val_mse`` (``val_loss`` for
  runs that train more than the energy, ``train.targets``) has not improved for
  ``plateau_patience`` epochs (never below ``min_lr``); no warm-up.

Lightning stores the scheduler's state in every checkpoint, so ``--resume`` continues it.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from irrepscope.errors import ConfigError

LR_SCHEDULES = ("constant", "warmup_cosine", "reduce_on_plateau")


def check_schedule_settings(t: Any) -> None:
    """Raise ``ConfigError`` for a bad schedule in TrainConfig ``t`` (no data needed)."""
    if t.lr_schedule not in LR_SCHEDULES:
        raise ConfigError(f"train.lr_schedule must be one of {', '.join(LR_SCHEDULES)}, "
                          f"got {t.lr_schedule!r}")
    if t.warmup_steps < 0:
        raise ConfigError(f"train.warmup_steps must be >= 0, got {t.warmup_steps}")
    if t.warmup_steps and t.lr_schedule == "reduce_on_plateau":
        raise ConfigError("train.warmup_steps must be 0 with train.lr_schedule: "
                          "reduce_on_plateau (use warmup_cosine or constant for a warm-up)")
    if not 0 <= t.min_lr < t.lr:
        raise ConfigError(f"train.min_lr must be >= 0 and below train.lr={t.lr}, got {t.min_lr}")
    if not 0 < t.plateau_factor < 1:
        raise ConfigError(f"train.plateau_factor must be in (0, 1), got {t.plateau_factor}")
    if t.plateau_patience < 0:
        raise ConfigError(f"train.plateau_patience must be >= 0, got {t.plateau_patience}")


def lr_factor(step: int, schedule: str, warmup_steps: int, total_steps: int,
              min_ratio: float) -> float:
    """Multiplier of ``train.lr`` before optimizer step ``step`` (0-based)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(optimizer: torch.optim.Optimizer, t: Any, total_steps: int
                    ) -> dict[str, Any] | None:
    """Lightning ``lr_scheduler`` config for TrainConfig ``t`` over ``total_steps`` steps.

    Returns None for a constant lr without warm-up (nothing to schedule). Raises
    ``ConfigError`` when the warm-up is not shorter than the run.
    """
    if t.warmup_steps >= total_steps > 0:
        raise ConfigError(f"train.warmup_steps={t.warmup_steps} is not shorter than the run "
                          f"({total_steps} optimizer steps: train.max_epochs x batches per "
                          f"epoch); use fewer warm-up steps or more epochs")
    if t.lr_schedule == "reduce_on_plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=t.plateau_factor, patience=t.plateau_patience,
            min_lr=t.min_lr)
        monitor = "val_mse" if list(t.targets) == ["energy"] else "val_loss"
        return {"scheduler": scheduler, "monitor": monitor, "interval": "epoch",
                "strict": True}
    if t.lr_schedule == "constant" and t.warmup_steps == 0:
        return None
    ratio = t.min_lr / t.lr

    def factor(step: int) -> float:
        return lr_factor(step, t.lr_schedule, t.warmup_steps, total_steps, ratio)

    return {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, factor),
            "interval": "step"}
