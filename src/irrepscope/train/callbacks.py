"""Run-directory writer: ``last.ckpt``, ``best.ckpt`` and ``metrics.csv`` once per epoch.

Runs at the end of every training epoch (after validation): checks that every weight is finite
(never checkpoints poisoned weights), adds the epoch's row to the run's record (kept in its own
state, so every checkpoint carries all rows so far and the best epoch) and commits the epoch
with ``run_records.commit_epoch`` (last.ckpt first, then best.ckpt, then metrics.csv; a resume
repairs the later two from last.ckpt). Subclassing ``Checkpoint`` makes Lightning call it after
``LightningModule.on_train_epoch_end``, where the epoch metrics are logged.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint

from irrepscope.train.module import NonFiniteLossError
from irrepscope.train.run_records import METRICS_FILE, RECORD_KEY, commit_epoch, read_metrics


def weights_finite(module: torch.nn.Module) -> bool:
    """True when every parameter and buffer of ``module`` is finite."""
    tensors = list(module.parameters()) + list(module.buffers())
    return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())


class RunDirCallback(Checkpoint):
    """Writes ``last.ckpt``, ``best.ckpt`` (lowest ``val_mse``, or ``val_loss``
    with more targets than the energy) and ``metrics.csv`` in run_dir."""

    def __init__(self, run_dir: str | Path) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.best_val_mse = math.inf
        self.best_epoch = -1
        self.rows: list[dict[str, Any]] | None = []  # None: resumed from a record-less checkpoint
        self._epoch_start = time.perf_counter()

    @property
    def state_key(self) -> str:
        """Fixed key of this callback's state in ``checkpoint["callbacks"]``."""
        return RECORD_KEY

    @property
    def last_path(self) -> Path:
        """``run_dir/last.ckpt``."""
        return self.run_dir / "last.ckpt"

    @property
    def best_path(self) -> Path:
        """``run_dir/best.ckpt``."""
        return self.run_dir / "best.ckpt"

    def state_dict(self) -> dict[str, Any]:
        """The run's record, stored in every checkpoint: best so far and all metrics rows."""
        return {"best_val_mse": self.best_val_mse, "best_epoch": self.best_epoch,
                "rows": self.rows}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the record on resume."""
        self.best_val_mse = float(state_dict["best_val_mse"])
        self.best_epoch = int(state_dict["best_epoch"])
        rows = state_dict.get("rows")
        self.rows = [dict(r) for r in rows] if rows is not None else None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Start the epoch clock."""
        self._epoch_start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Check weights, save checkpoints, append the epoch's row to ``metrics.csv``."""
        if trainer.sanity_checking:
            return
        epoch = trainer.current_epoch
        if not weights_finite(pl_module):
            raise NonFiniteLossError(
                f"weights are not finite at the end of epoch {epoch} (global step "
                f"{trainer.global_step}); no checkpoint written. Try a smaller train.lr or "
                f"train.gradient_clip_val.")
        metrics = dict(getattr(pl_module, "epoch_metrics", {}))
        # runs with more targets than the energy keep the epoch of the lowest weighted val_loss
        val_mse = metrics.get("val_loss", metrics.get("val_mse", math.nan))
        improved = val_mse < self.best_val_mse  # NaN never improves
        if improved:
            self.best_val_mse, self.best_epoch = float(val_mse), epoch
        path = self.run_dir / METRICS_FILE
        previous = self.rows if self.rows is not None else read_metrics(path)
        row = {**metrics, "epoch": epoch, "step": trainer.global_step,
               "epoch_time_s": time.perf_counter() - self._epoch_start}
        self.rows = [r for r in previous if r["epoch"] < epoch] + [row]
        # Trainer.save_checkpoint's first step, taken here so the checksum goes in before writing
        checkpoint = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
        if trainer.is_global_zero:
            commit_epoch(self.run_dir, checkpoint, improved, self.rows)
        trainer.strategy.barrier("RunDirCallback")
