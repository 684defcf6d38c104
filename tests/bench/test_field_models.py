"""The field-models tables: read from each run's analysis summary (the layer the model columns
use), mean ± std over seeds, switched-off counts; composition shifts from an xyz file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms
from ase.io import write

from irrepscope.bench.field_models import baseline_mae, composition_shifts, main, tables


def _summary(mae: float, scale_l1: float) -> dict:
    rows = [{"block": b, "l": l, "relative_scale": 1.0 if l == 0 else scale_l1,
             "variance_share": 0.5, "ablation_rel_mse": 0.1 * (l + 1), "probe_r2_energy": 0.3,
             "switched_off": l > 0 and scale_l1 < 1e-3} for b in (0, 1) for l in (0, 1)]
    rows = [r for r in rows if r["block"] == 0 or r["l"] == 0]  # block 1: scalars only
    return {"last_block": 1, "model_block": 0, "table": rows, "test_mae": mae,
            "baseline_test_mae": 0.8}


def test_tables_from_summaries(tmp_path) -> None:
    for seed, (mae, scale) in enumerate([(0.30, 1e-5), (0.32, 2e-2)], start=1):
        folder = tmp_path / "mace" / f"seed{seed}"
        (folder / "analysis").mkdir(parents=True)
        (folder / "analysis" / "summary.json").write_text(json.dumps(_summary(mae, scale)))
        (folder / "train_seconds.txt").write_text("100\n")
    text = tables(tmp_path)
    assert "| mace | 2 | 310 ± 14 | 100 ± 0 |" in text
    # l=1 is switched off in one seed of two
    assert "|  | 1 | 0.01 ± 0.014 |" in text and "1 of 2 |" in text
    assert main(["tables", str(tmp_path)]) == 0
    assert (tmp_path / "field_models.md").read_text() == text


def test_composition_shifts(tmp_path) -> None:
    energy = {"H": -0.5, "C": -37.8, "O": -75.0}
    frames = []
    for formula in ("CH4", "H2O", "CO2", "C2H6", "CH3OH"):
        atoms = Atoms(formula)
        atoms.positions = np.random.default_rng(0).normal(size=(len(atoms), 3))
        atoms.info["REF_energy"] = sum(energy[s] for s in atoms.get_chemical_symbols())
        frames.append(atoms)
    write(tmp_path / "t.xyz", frames, format="extxyz")
    shifts = composition_shifts(tmp_path / "t.xyz")
    assert shifts == pytest.approx(energy)
    assert baseline_mae(tmp_path / "t.xyz", tmp_path / "t.xyz") == pytest.approx(0, abs=1e-9)
