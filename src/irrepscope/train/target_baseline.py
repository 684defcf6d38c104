"""Loss scales and trivial baselines of the charge-derived targets, written to ``targets.json``.

At set-up (fit) of a run that trains charges, dipole or quadrupole, ``TargetBaselines`` takes
the training split's root mean square of each target's components as its loss scale (so a
weight of 1 means "as important as the energy") and scores on every split what needs no model:

- ``zero``: predicting 0 (charges, dipole, quadrupole), as MAE in the target's unit;
- ``element_mean`` (charges): every atom gets its element's mean training charge;
- ``mean_norm`` (dipole, quadrupole; rotation invariants): predicting the training mean of
  |d| or ||Q|| as the norm, as MAE of the norm (compare with ``{stage}_{target}_norm_mae``).

These stand beside the model's errors in ``test_metrics.json`` (``baseline_test_<target>_...``)
and the run summary, as the element-count baseline does for the energy.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np

from irrepscope.data.splits import Split
from irrepscope.data.targets import UNITS
from irrepscope.train.run_records import atomic_write_text

TARGETS_FILE = "targets.json"
TARGET_METRIC = re.compile(r"test_(charges|dipole|quadrupole)_")  # and baseline_test_...
STAGES = ("train", "val", "test")
MIN_SCALE = 1e-6


def _charges(dataset: Any, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(charges [A] e, atomic numbers [A]) of the molecules at ``positions``."""
    keep = np.zeros(len(dataset), dtype=bool)
    keep[np.asarray(positions, dtype=np.int64)] = True
    atoms = np.repeat(keep, dataset.num_atoms)
    return (dataset.charges.numpy()[atoms].astype(np.float64),
            dataset.atomic_numbers.numpy()[atoms])


def _vectors(dataset: Any, name: str, positions: np.ndarray) -> np.ndarray:
    return getattr(dataset, name).numpy()[np.asarray(positions, dtype=np.int64)].astype(np.float64)


def _rms(values: np.ndarray) -> float:
    return max(float(np.sqrt(np.mean(values ** 2))) if values.size else 1.0, MIN_SCALE)


def target_statistics(dataset: Any, split: Split, targets: Any) -> dict[str, Any]:
    """``targets.json``'s content: loss scales, units and the baselines on every split."""
    summary: dict[str, Any] = {"loss_scales": {}, "units": {}}
    for name in (t for t in targets if t != "energy"):
        summary["units"][name] = UNITS[name]
        if name == "charges":
            q, z = _charges(dataset, split.train)
            summary["loss_scales"][name] = _rms(q)
            sums, counts = np.bincount(z, weights=q), np.bincount(z)
            means = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
            for stage in STAGES:
                q, z = _charges(dataset, getattr(split, stage))
                mean_z = means[z] if len(means) > int(z.max(initial=0)) else np.zeros_like(q)
                summary[f"{stage}_{name}_zero_mae"] = _mae(q)
                summary[f"{stage}_{name}_element_mean_mae"] = _mae(q - mean_z)
            continue
        train = _vectors(dataset, name, split.train)
        summary["loss_scales"][name] = _rms(train)
        mean_norm = float(np.linalg.norm(train, axis=1).mean()) if len(train) else 0.0
        summary[f"train_{name}_mean_norm"] = mean_norm
        for stage in STAGES:
            norms = np.linalg.norm(_vectors(dataset, name, getattr(split, stage)), axis=1)
            summary[f"{stage}_{name}_zero_mae"] = _mae(norms)
            summary[f"{stage}_{name}_mean_norm_mae"] = _mae(norms - mean_norm)
    return summary


def _mae(values: np.ndarray) -> float | None:
    return float(np.mean(np.abs(values))) if values.size else None


def read_target_statistics(run_dir: str | Path) -> dict[str, Any] | None:
    """``run_dir/targets.json``, or None for runs that train the energy only."""
    path = Path(run_dir) / TARGETS_FILE
    return json.loads(path.read_text()) if path.exists() else None


def target_baseline_metrics(run_dir: str | Path) -> dict[str, Any]:
    """``baseline_{val,test}_<target>_<kind>_mae`` of a run (empty without targets.json)."""
    summary = read_target_statistics(run_dir) or {}
    return {f"baseline_{key}": value for key, value in summary.items()
            if key.startswith(("val_", "test_")) and key.endswith("_mae")}


def _number(value: Any, unit: str = "") -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.4g}{unit}"


def format_target_summary(metrics: dict[str, Any]) -> str:
    """Test errors of the non-energy targets beside their baselines ('' when there are none)."""
    parts = []
    for name in ("charges", "dipole", "quadrupole"):
        if metrics.get(f"test_{name}_mae") is None:
            continue
        unit = f" {UNITS[name]}"
        base = {kind: metrics.get(f"baseline_test_{name}_{kind}_mae")
                for kind in ("zero", "element_mean", "mean_norm")}
        text = f"{name} MAE {_number(metrics[f'test_{name}_mae'], unit)}"
        if name == "dipole":
            text += f" ({_number(metrics.get('test_dipole_mae_debye'), ' D')})"
        text += f" (predicting zero: {_number(base['zero'])}"
        if name == "charges":
            parts.append(text + f", each element's mean: {_number(base['element_mean'])})")
            continue
        parts.append(text + f"), norm MAE {_number(metrics.get(f'test_{name}_norm_mae'))} "
                     f"(predicting the mean norm: {_number(base['mean_norm'])}), angle "
                     f"{_number(metrics.get(f'test_{name}_angle_deg'), '°')}")
    return "; ".join(parts)


class TargetBaselines(L.Callback):
    """Sets the module's ``loss_scales`` and writes ``targets.json`` at set-up (fit)."""

    def __init__(self, run_dir: str | Path) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Compute on the datamodule's training split before the first step (fit only)."""
        targets = [t for t in pl_module.targets if t != "energy"]
        if stage != "fit" or not targets:
            return
        datamodule = trainer.datamodule
        datamodule.setup(stage)
        summary = target_statistics(datamodule.dataset, datamodule.split, targets)
        pl_module.loss_scales = dict(summary["loss_scales"])
        if trainer.is_global_zero:
            atomic_write_text(self.run_dir / TARGETS_FILE, json.dumps(summary, indent=2) + "\n")
