"""``irrepscope analyze --model FILE --xyz DATA.xyz``: the analysis of a MACE, NequIP or Allegro
model file on molecules from an extended-XYZ file, written as the same report as a run's.

Everything that can be wrong with the input (file family, trust, elements, periodic frames,
missing energies) is checked before anything is written. The energies under ``energy_key`` (eV)
are the probe and ablation targets; the composition baseline is the least squares of those
energies on element counts, fitted on the same molecules (in-sample: it favours the baseline).
SMILES are read from the frames' ``smiles`` info (as ``irrepscope data export`` writes them).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from irrepscope.analysis.adapters import load_model_file
from irrepscope.analysis.adapters.hooks import AdapterProbe, capture_features
from irrepscope.analysis.features import analyse_features
from irrepscope.errors import DataError, IrrepscopeError

MAX_MODEL_MOLECULES = 128  # ablation and gradients: |L| + 2 model passes, as for runs


def read_frames(xyz: str | Path, energy_key: str) -> tuple[list[Any], np.ndarray,
                                                           list[str] | None]:
    """(frames, energies [n] eV, SMILES or None) of an extended-XYZ file; one ``DataError``
    naming the frames without an energy."""
    from irrepscope.data.xyz import frame_energy, read_atoms

    frames = read_atoms(xyz)
    energies = [frame_energy(atoms, energy_key) for atoms in frames]
    missing = [i for i, e in enumerate(energies) if e is None or not np.isfinite(e)]
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
        raise DataError(f"{xyz}: {len(missing)} of {len(frames)} frames have no finite energy "
                        f"under {energy_key!r} (frames {shown}); give the key with --energy-key")
    smiles = [str(atoms.info.get("smiles", "")) for atoms in frames]
    return frames, np.asarray(energies, dtype=np.float64), smiles if all(smiles) else None


def composition_baseline(frames: Sequence[Any], energies: np.ndarray) -> dict[str, float]:
    """MAE and MSE (eV, eV²) of the element-count least squares fitted on these molecules."""
    from irrepscope.model.references import element_counts, fit_element_energies

    z = np.concatenate([atoms.get_atomic_numbers() for atoms in frames])
    counts = element_counts(z, [len(atoms) for atoms in frames], int(z.max()) + 1)
    fit = fit_element_energies(counts, energies, "the given molecules")
    error = fit.predict(counts) - energies
    return {"baseline_mae": float(np.mean(np.abs(error))), "baseline_mse": float(np.mean(
        error ** 2))}


def _probe_sample(n: int, limit: int, seed: int) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def analyze_model_file(model: str | Path, xyz: str | Path, out: str | Path | None = None,
                       layers: Sequence[str] | None = None, family: str | None = None,
                       trust_code: bool = False, energy_key: str = "REF_energy",
                       seed: int = 0, panel: str | None = None, batch_size: int = 32,
                       max_model_molecules: int = MAX_MODEL_MOLECULES,
                       progress: bool = True) -> Path:
    """Analyse a model file on the molecules of ``xyz``; returns the path of report.html
    (``out`` defaults to ``<model stem>_analysis`` beside the model file)."""
    model, xyz = Path(model), Path(xyz)
    out = Path(out) if out is not None else model.with_name(f"{model.name.split('.')[0]}"
                                                            f"_analysis")
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file; give a folder for the report")
    adapter, found = load_model_file(model, family, trust_code)
    frames, energies, smiles = read_frames(xyz, energy_key)
    adapter.check_molecules(frames)
    points = adapter.points(layers)  # unknown --layers fail here, before anything is written
    names = [p.name for p in points]
    notes = [f"Model: {found.looks_like} ({model}); molecules and energies "
             f"({energy_key!r}, eV) from {xyz}; layers {', '.join(names)}."]
    features = capture_features(adapter, frames, names, batch_size, targets=energies,
                                smiles=smiles)
    pick = _probe_sample(len(frames), max_model_molecules, seed)
    if len(pick) < len(frames):
        notes.append(f"Ablation and input gradients use {len(pick)} of the {len(frames)} "
                     f"molecules (drawn with seed {seed}); the other numbers use all of them.")
    probe = AdapterProbe(adapter, [frames[i] for i in pick], energies[pick], names, batch_size)
    features.notes = notes
    analysis = analyse_features(features, out, probe=probe, seed=seed, panel=panel,
                                progress=progress)
    metrics = model_metrics(features.predictions, energies, frames, analysis.notes)
    analysis.summary.update(family=found.family, model_file=str(model), xyz=str(xyz),
                            energy_key=energy_key, **metrics)
    (analysis.out_dir / "summary.json").write_text(
        json.dumps(analysis.summary, indent=2, default=float) + "\n")
    from irrepscope.analysis.report import model_document, write_report

    return write_report(model_document(analysis), analysis.out_dir,
                        f"irrepscope analysis: {model.name}")


def model_metrics(predictions: np.ndarray, energies: np.ndarray, frames: Sequence[Any],
                  notes: list[str]) -> dict[str, float]:
    """The model's MAE / MSE on the molecules beside the composition baseline's (eV, eV²)."""
    error = np.asarray(predictions) - energies
    metrics = {"test_mae": float(np.mean(np.abs(error))), "test_mse": float(np.mean(error ** 2)),
               "baseline_test_mae": float("nan"), "baseline_test_mse": float("nan")}
    try:
        baseline = composition_baseline(frames, energies)
    except IrrepscopeError as err:
        notes.append(f"Composition baseline unavailable: {err}")
        return metrics
    metrics.update(baseline_test_mae=baseline["baseline_mae"],
                   baseline_test_mse=baseline["baseline_mse"])
    return metrics
