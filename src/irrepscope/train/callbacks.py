"""Run-directory writer: atomic ``last.ckpt``/``best.ckpt`` and ``metrics.csv`` once per epoch.

Runs at the end of every training epoch (after validation): checks that every weight is finite
(never checkpoints poisoned weights), saves ``last.ckpt`` through a temporary file and a rename,
copies it to ``best.ckpt`` the same way when ``val_mse`` improved, and rewrites ``metrics.csv``
(one row per epoch, eV units) atomically. Subclassing ``Checkpoint`` makes Lightning call it
after ``LightningModule.on_train_epoch_end``, where the epoch metrics are logged.
"""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint

from irrepscope.train.module import NonFiniteLossError

METRICS_FILE = "metrics.csv"
METRIC_COLUMNS = ("epoch", "step", "train_mse", "train_mae", "train_mae_mev", "val_mse",
                  "val_mae", "val_mae_mev", "train_mol_per_s", "lr", "epoch_time_s")


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same directory and a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def atomic_copy(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` via a temporary file and a rename."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``metrics.csv`` (numbers as floats, ``epoch``/``step`` as ints)."""
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    out = []
    for row in rows:
        parsed: dict[str, Any] = {}
        for key, value in row.items():
            if value in ("", None):
                parsed[key] = None
            elif key in ("epoch", "step"):
                parsed[key] = int(value)
            else:
                parsed[key] = float(value)
        out.append(parsed)
    return out


def write_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    """Atomically write ``rows`` (dicts keyed by ``METRIC_COLUMNS``) as CSV."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else repr(row[k])) for k in METRIC_COLUMNS})
    atomic_write_text(path, buffer.getvalue())


def weights_finite(module: torch.nn.Module) -> bool:
    """True when every parameter and buffer of ``module`` is finite."""
    tensors = list(module.parameters()) + list(module.buffers())
    return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())


class RunDirCallback(Checkpoint):
    """Writes ``last.ckpt``, ``best.ckpt`` (lowest ``val_mse``) and ``metrics.csv`` in run_dir."""

    def __init__(self, run_dir: str | Path) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.best_val_mse = math.inf
        self.best_epoch = -1
        self._epoch_start = time.perf_counter()

    @property
    def last_path(self) -> Path:
        """``run_dir/last.ckpt``."""
        return self.run_dir / "last.ckpt"

    @property
    def best_path(self) -> Path:
        """``run_dir/best.ckpt``."""
        return self.run_dir / "best.ckpt"

    def state_dict(self) -> dict[str, Any]:
        """Best-so-far bookkeeping, stored in every checkpoint."""
        return {"best_val_mse": self.best_val_mse, "best_epoch": self.best_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the best-so-far bookkeeping on resume."""
        self.best_val_mse = float(state_dict["best_val_mse"])
        self.best_epoch = int(state_dict["best_epoch"])

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
        val_mse = metrics.get("val_mse", math.nan)
        improved = val_mse < self.best_val_mse  # NaN never improves
        if improved:
            self.best_val_mse, self.best_epoch = float(val_mse), epoch
        tmp = self.run_dir / f".last.ckpt.{os.getpid()}.tmp"
        trainer.save_checkpoint(tmp, weights_only=False)  # all ranks call it; rank 0 writes
        if trainer.is_global_zero:
            os.replace(tmp, self.last_path)
            if improved:
                atomic_copy(self.last_path, self.best_path)
            path = self.run_dir / METRICS_FILE
            rows = [r for r in read_metrics(path) if r["epoch"] < epoch]
            row = {**metrics, "epoch": epoch, "step": trainer.global_step,
                   "epoch_time_s": time.perf_counter() - self._epoch_start}
            write_metrics(path, rows + [row])
        trainer.strategy.barrier("RunDirCallback")
