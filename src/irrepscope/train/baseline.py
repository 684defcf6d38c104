"""The composition baseline of every run, and the element-reference fit it shares with the model.

Before training starts, ``CompositionBaseline`` fits the energy on the element counts of the
run's **training** molecules by least squares (``model.references.fit_element_energies``),
scores that fit on train, validation and test, and writes ``run_dir/baseline.json``. When the
model uses ``energy_reference: element_least_squares``, the same fit becomes its references.
Errors raised here (NaN training energies; for element references also too few molecules and
elements absent from training) stop the run before its first step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np

from irrepscope.data.splits import Split
from irrepscope.errors import DataError
from irrepscope.model.references import (
    ElementFit,
    element_counts,
    element_name,
    fit_element_energies,
)
from irrepscope.train.run_records import atomic_write_text
from irrepscope.train.target_baseline import format_target_summary

BASELINE_FILE = "baseline.json"
STAGES = ("train", "val", "test")
STAGE_NAMES = {"train": "training", "val": "validation", "test": "test"}


def split_counts(dataset: Any, indices: np.ndarray, num_elements: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(element counts [M, num_elements], energies [M] eV) of ``dataset[indices]``."""
    indices = np.asarray(indices, dtype=np.int64)
    if hasattr(dataset, "atomic_numbers"):  # MoleculeGraphs: no per-item graph building
        counts = element_counts(dataset.atomic_numbers.numpy(), dataset.num_atoms, num_elements)
        return counts[indices], dataset.y.numpy().astype(np.float64)[indices]
    items = [dataset[int(i)] for i in indices]
    z = np.concatenate([item.z.numpy() for item in items]) if items else np.zeros(0, np.int64)
    counts = element_counts(z, [item.z.numel() for item in items], num_elements)
    energies = np.array([float(item.y.view(-1)[0]) for item in items], dtype=np.float64)
    return counts, energies


def _errors(fit: ElementFit | None, counts: np.ndarray, energies: np.ndarray
            ) -> dict[str, Any]:
    if fit is None or not len(energies):
        return {"mse": None, "mae": None, "count": int(len(energies))}
    err = fit.predict(counts) - energies
    return {"mse": float(np.mean(err ** 2)), "mae": float(np.mean(np.abs(err))),
            "count": int(len(energies))}


def composition_baseline(dataset: Any, split: Split, num_elements: int,
                         strict: bool = False) -> tuple[ElementFit | None, dict[str, Any]]:
    """(fit on the training split, summary with ``{stage}_mse/_mae/_count``) of the baseline.

    Non-finite training energies always raise ``DataError``. Other fit failures (too few
    molecules, dependent counts) raise when ``strict``, else the summary carries the message
    under ``error`` and null metrics. Elements absent from training predict 0 eV in the
    baseline; ``unseen_element_molecules`` counts the molecules that have one.
    ``training_elements``: the atomic numbers present in the training split.
    """
    data = {stage: split_counts(dataset, getattr(split, stage), num_elements)
            for stage in STAGES}
    energies = data["train"][1]
    if not np.isfinite(energies).all():
        fit_element_energies(*data["train"])  # raises the NaN message
    fit: ElementFit | None
    summary: dict[str, Any] = {
        "method": "least squares of the energy on the element counts (no intercept), fitted "
                  "on the training split, scored on each split",
        "training_elements": np.flatnonzero(data["train"][0].sum(axis=0) > 0).tolist()}
    try:
        fit = fit_element_energies(*data["train"])
    except DataError as err:
        if strict:
            raise
        fit, summary["error"] = None, str(err)
    if fit is not None:
        summary["element_energies_ev"] = {element_name(z): float(fit.energies[z])
                                          for z in np.flatnonzero(fit.present)}
        summary["residual_std_ev"] = fit.residual_std
        summary["unseen_element_molecules"] = {
            stage: int(fit.unseen(data[stage][0]).sum()) for stage in ("val", "test")}
    for stage in STAGES:
        for key, value in _errors(fit, *data[stage]).items():
            summary[f"{stage}_{key}"] = value
    return fit, summary


def check_unseen_elements(fit: ElementFit, summary: dict[str, Any], dataset: Any,
                          split: Split, num_elements: int) -> None:
    """Raise ``DataError`` if validation/test molecules hold elements absent from training."""
    unseen = summary["unseen_element_molecules"]
    if not any(unseen.values()):
        return
    missing = set()
    for stage in ("val", "test"):
        counts, _ = split_counts(dataset, getattr(split, stage), num_elements)
        missing |= set(np.flatnonzero((counts[:, ~fit.present] > 0).any(axis=0)).tolist())
    absent = np.flatnonzero(~fit.present)
    names = ", ".join(element_name(absent[i]) for i in sorted(missing))
    raise DataError(
        f"{names} occur in {unseen['val']} validation and {unseen['test']} test molecule(s) but "
        f"in no training molecule, so model.energy_reference: element_least_squares has no "
        f"reference energy for them; use a larger data.subset, another data.split_seed, or "
        f"model.energy_reference: global_mean_std")


def read_baseline(run_dir: Path) -> dict[str, Any] | None:
    """``run_dir/baseline.json`` as a dict, or None when the run has none."""
    path = Path(run_dir) / BASELINE_FILE
    return json.loads(path.read_text()) if path.exists() else None


def baseline_metrics(run_dir: Path) -> dict[str, Any]:
    """``baseline_{val,test}_{mse,mae}`` of a run (from baseline.json; empty if it has none)."""
    summary = read_baseline(run_dir) or {}
    return {f"baseline_{stage}_{kind}": summary.get(f"{stage}_{kind}")
            for stage in ("val", "test") for kind in ("mse", "mae") if summary}


def format_run_summary(metrics: dict[str, Any]) -> str:
    """One line: a run's test MSE/MAE beside the composition baseline's (test_metrics.json), and
    the other targets' errors beside theirs (``train.target_baseline``)."""
    others = format_target_summary(metrics)
    if metrics.get("test_mse") is None:
        return f"test {others}"
    return _energy_summary(metrics) + (f"; {others}" if others else "")


def _energy_summary(metrics: dict[str, Any]) -> str:
    text = f"test MSE {metrics['test_mse']:.4g} eV², MAE {metrics['test_mae']:.4g} eV"
    base_mse, base_mae = metrics.get("baseline_test_mse"), metrics.get("baseline_test_mae")
    if base_mse is None:
        return text + "; composition baseline unavailable"
    text += (f"; composition baseline (element counts, least squares) MSE {base_mse:.4g} eV², "
             f"MAE {base_mae:.4g} eV; model / baseline MSE {metrics['test_mse'] / base_mse:.3g}")
    if metrics["test_mse"] >= base_mse:
        text += " -- WORSE than counting atoms"
    return text


class CompositionBaseline(L.Callback):
    """Fits the baseline (and element references) at set-up; writes run_dir/baseline.json."""

    def __init__(self, run_dir: str | Path) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.summary: dict[str, Any] = {}

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Fit on the datamodule's training split before the first step (fit only)."""
        if stage != "fit":
            return
        datamodule = trainer.datamodule
        datamodule.setup(stage)
        model = pl_module.model
        num_elements = model.config.num_elements
        per_element = model.reference.per_element
        dataset, split = datamodule.dataset, datamodule.split
        fit, self.summary = composition_baseline(dataset, split, num_elements,
                                                 strict=per_element)
        if per_element:
            assert fit is not None
            check_unseen_elements(fit, self.summary, dataset, split, num_elements)
            model.reference.set_fit(fit)
        if trainer.is_global_zero:
            atomic_write_text(self.run_dir / BASELINE_FILE,
                              json.dumps(self.summary, indent=2) + "\n")
