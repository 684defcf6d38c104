"""A tiny MACE trained by mace_run_train on irrepscope-exported QM9 (energies only), analysed
through `irrepscope analyze --model` in MACE's environment (.venv-mace, e3nn 0.4.4)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from irrepscope.cli import main

pytest.importorskip("mace", reason="needs mace-torch 0.3.16 (e3nn 0.4.4): `make test` runs this "
                                   "module in .venv-mace")
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def mace_model(field_xyz, tmp_path_factory) -> Path:
    """mace_run_train: 16x0e+16x1o, max_ell 2, correlation 2, 2 interactions, 3 epochs, no
    forces in the data (energy loss only), float64 (its default)."""
    work = tmp_path_factory.mktemp("mace")
    command = [str(Path(sys.executable).with_name("mace_run_train")), "--name", "tiny",
               "--work_dir", str(work), "--train_file", str(field_xyz["train"]),
               "--valid_file", str(field_xyz["val"]), "--E0s", "average",
               "--model", "MACE", "--hidden_irreps", "16x0e+16x1o", "--max_ell", "2",
               "--correlation", "2", "--num_interactions", "2", "--r_max", "5.0",
               "--batch_size", "10", "--max_num_epochs", "3", "--forces_weight", "0",
               "--energy_key", "REF_energy", "--device", "cpu", "--seed", "1"]
    result = subprocess.run(command, capture_output=True, text=True, check=False,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return work / "tiny.model"


def test_mace_model_through_the_cli(mace_model, field_xyz, tmp_path, capsys,
                                   monkeypatch) -> None:
    monkeypatch.delenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", raising=False)  # set by importorskip
    out = tmp_path / "report"
    args = ["analyze", "--model", str(mace_model), "--xyz", str(field_xyz["test"]), "--out",
            str(out)]
    assert main(args) == 2 and not out.exists()
    assert "add --trust-model-code" in capsys.readouterr().err
    assert main([*args, "--trust-model-code", "--layers",
                 "interactions.0,products.0,interactions.1,products.1"]) == 0
    text = (out / "report.md").read_text()
    assert "a MACE model" in text and "composition baseline MAE" in text
    with open(out / "utilization.csv") as handle:
        rows = list(csv.DictReader(handle))
    irreps = {int(row["block"]): row["l"] for row in rows}
    assert sorted(irreps) == [0, 1, 2, 3]
    # the last layer with l > 0 is interactions.1 (block 2): ablation and gradients there
    chosen = [row for row in rows if row["block"] == "2"]
    assert [row["l"] for row in chosen] == ["0", "1", "2"]
    assert all(np.isfinite(float(row["ablation_rel_mse"])) for row in chosen)
    assert sum(float(row["grad_x_input_share"]) for row in chosen) == pytest.approx(1.0)
    assert os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD") is None
