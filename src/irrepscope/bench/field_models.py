"""The tables of "The field's models" (docs/findings.md, scripts/findings/field_models.sh):
irrepscope, NequIP, Allegro and MACE trained by their own tools on one irrepscope split, each
analysed by ``irrepscope analyze``; this module reads their analyses and writes the tables.

    python -m irrepscope.bench.field_models shifts TRAIN.xyz    # per-type shifts for nequip
    python -m irrepscope.bench.field_models tables OUT          # OUT/field_models.md

Layout under OUT: ``<family>/seed<S>/analysis/summary.json`` (irrepscope runs:
``irrepscope/seed<S>/analysis``), and ``<family>/seed<S>/train_seconds.txt`` (training wall
time), ``train.xyz`` / ``test.xyz`` (the split: the composition baseline is fitted on the first
and scored on the second). Per l, the numbers are those of the layer the model columns use (the
last with l > 0).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from irrepscope.bench.record import markdown_table
from irrepscope.train.seed_stats import format_mean_std

FAMILIES = ("irrepscope", "nequip", "allegro", "mace")
PER_L = ("relative_scale", "variance_share", "ablation_rel_mse", "probe_r2_energy")


def _composition_fit(xyz: str | Path, energy_key: str = "REF_energy"):
    """(least-squares element fit, element counts, energies) of an extended-XYZ file."""
    from irrepscope.analysis.model_file import read_frames
    from irrepscope.model.references import element_counts, fit_element_energies

    frames, energies, _ = read_frames(xyz, energy_key)
    z = np.concatenate([atoms.get_atomic_numbers() for atoms in frames])
    counts = element_counts(z, [len(a) for a in frames], 10)
    return fit_element_energies(counts, energies, str(xyz)), counts, energies


def composition_shifts(xyz: str | Path, energy_key: str = "REF_energy") -> dict[str, float]:
    """Least-squares energy per element (eV) of an extended-XYZ file's frames."""
    from ase.data import chemical_symbols

    fit = _composition_fit(xyz, energy_key)[0]
    return {chemical_symbols[i]: float(fit.energies[i]) for i in np.flatnonzero(fit.present)}


def baseline_mae(train: str | Path, test: str | Path) -> float:
    """Test MAE (eV) of the composition baseline fitted on ``train``'s molecules."""
    fit = _composition_fit(train)[0]
    _, counts, energies = _composition_fit(test)
    return float(np.mean(np.abs(fit.predict(counts) - energies)))


def _runs(out: Path, family: str) -> dict[int, dict[str, Any]]:
    runs = {}
    for summary in sorted((out / family).glob("seed*/analysis/summary.json")):
        seed_dir = summary.parent.parent
        data = json.loads(summary.read_text())
        seconds = seed_dir / "train_seconds.txt"
        data["train_seconds"] = float(seconds.read_text()) if seconds.exists() else np.nan
        runs[int(seed_dir.name.removeprefix("seed"))] = data
    return runs


def _model_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    block = summary.get("model_block", summary["last_block"])
    return [row for row in summary["table"] if row["block"] == block]


def tables(out: Path) -> str:
    """The Markdown of both tables (errors; per-l use) from OUT's analyses."""
    error_rows, use_rows = [], []
    for family in FAMILIES:
        runs = _runs(out, family)
        if not runs:
            continue
        mae = [1000 * float(s.get("test_mae") or np.nan) for s in runs.values()]
        error_rows.append([family, len(runs), format_mean_std(mae, 3),
                           format_mean_std([s["train_seconds"] for s in runs.values()], 3)])
        orders = sorted({row["l"] for s in runs.values() for row in _model_rows(s)})
        for l in orders:
            values = {key: [next((float(r[key]) for r in _model_rows(s) if r["l"] == l),
                                 np.nan) for s in runs.values()] for key in PER_L}
            off = sum(bool(r["switched_off"]) for s in runs.values() for r in _model_rows(s)
                      if r["l"] == l)
            use_rows.append([family if l == orders[0] else "", l,
                             *(format_mean_std(values[key], 2) for key in PER_L),
                             f"{off} of {len(runs)}"])
    if (out / "train.xyz").exists() and (out / "test.xyz").exists():
        base = 1000 * baseline_mae(out / "train.xyz", out / "test.xyz")
        error_rows.append(["composition baseline (fitted on train.xyz)", "", f"{base:.3g}", ""])
    return (markdown_table(["model", "seeds", "test MAE (meV)", "training time (s)"],
                           error_rows)
            + "\n\n" + markdown_table(["model", "l", *PER_L, "switched off"], use_rows) + "\n")


def main(argv: list[str] | None = None) -> int:
    """``shifts TRAIN.xyz`` (a Hydra dict) or ``tables OUT`` (see the module docstring)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "shifts":
        shifts = composition_shifts(argv[1])
        print("{" + ",".join(f"{k}:{v:.6f}" for k, v in shifts.items()) + "}")
        return 0
    if len(argv) == 2 and argv[0] == "tables":
        text = tables(Path(argv[1]))
        (Path(argv[1]) / "field_models.md").write_text(text)
        print(text)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
