"""`irrepscope analyze` and `compare` end to end on a tiny run trained through the CLI.

A 48-molecule slice of QM9 (qm9pack's first CSV rows) stands in for QM9 via $IRREPSCOPE_QM9_DIR,
with its own data cache, so the whole module takes seconds.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from irrepscope.data.splits import load_split, save_split

CONFIG = """\
seed: 5
data:
  fractions: [0.5, 0.25, 0.25]
model:
  orders: [0, 1, 2]
  hidden: 4
  num_layers: 1
train:
  max_epochs: 1
  batch_size: 8
  accelerator: cpu
  devices: 1
  progress_bar: false
"""


def _cli(*args: str, env: dict) -> str:
    result = subprocess.run([sys.executable, "-m", "irrepscope.cli", *args], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"irrepscope {' '.join(args)} failed:\n{result.stderr[-4000:]}"
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, dict]:
    """(run dir of a 1-epoch h=4 run on 48 QM9 molecules, environment for the subprocesses)."""
    import pandas as pd

    from irrepscope.data.qm9 import qm9pack_dir

    root = tmp_path_factory.mktemp("cli_analysis")
    source = qm9pack_dir()
    if source is None or not (source / "qm9_part1.csv").exists():
        pytest.skip("qm9pack's CSV files are not installed")
    (root / "qm9").mkdir()
    pd.read_csv(source / "qm9_part1.csv", nrows=48).to_csv(root / "qm9" / "qm9_part1.csv",
                                                           index=False)
    env = {**os.environ, "IRREPSCOPE_QM9_DIR": str(root / "qm9"),
           "IRREPSCOPE_DATA_DIR": str(root / "cache"), "MPLBACKEND": "Agg",
           "TQDM_DISABLE": "1"}
    (root / "tiny.yaml").write_text(CONFIG)
    run_dir = root / "run_a"
    assert Path(_cli("train", "--config", str(root / "tiny.yaml"), "--run-dir", str(run_dir),
                     env=env)) == run_dir
    return run_dir, env


def test_untrained_run_is_flagged_and_baseline_is_least_squares(tiny_run, monkeypatch) -> None:
    """One epoch of the paper's recipe on 24 molecules: worse than counting atoms."""
    import json

    from irrepscope.train.run import load_run_dataset

    run_dir, env = tiny_run
    for key in ("IRREPSCOPE_QM9_DIR", "IRREPSCOPE_DATA_DIR"):  # this test only
        monkeypatch.setenv(key, env[key])
    dataset, split = load_run_dataset(run_dir, progress=False), load_split(run_dir / "split.npz")

    def counts(indices):
        return np.array([[int((dataset[int(i)].z == e).sum()) for e in (1, 6, 7, 8, 9)]
                         for i in indices], dtype=float)

    def energies(indices):
        return np.array([float(dataset[int(i)].y) for i in indices])

    train_counts = counts(split.train)
    used = train_counts.sum(axis=0) > 0
    coef = np.linalg.lstsq(train_counts[:, used], energies(split.train), rcond=None)[0]
    err = counts(split.test)[:, used] @ coef - energies(split.test)
    report = Path(_cli("analyze", str(run_dir), env=env))
    summary = json.loads((report.parent / "summary.json").read_text())
    assert summary["baseline_test_mse"] == pytest.approx(np.mean(err ** 2), rel=1e-6)
    assert summary["baseline_test_mae"] == pytest.approx(np.mean(np.abs(err)), rel=1e-6)
    md = (report.parent / "report.md").read_text()
    assert "this model is worse than counting atoms" in md
    assert f"| composition baseline test MSE (eV²) | {np.mean(err ** 2):.4g} |" in md
    info = _cli("model", "info", "--run", str(run_dir), env=env)
    assert "composition baseline" in info and "WORSE than counting atoms" in info
    shutil.rmtree(report.parent)  # the next test analyses its own test split from scratch


def test_analyze_and_compare(tiny_run, monkeypatch) -> None:
    run_dir, env = tiny_run
    # the analysis must use the test indices stored in the run dir, not recompute the split
    split = load_split(run_dir / "split.npz")
    chosen = np.sort(np.concatenate([split.train[:5], split.test[:4]]))
    save_split(dataclasses.replace(split, test=chosen), run_dir / "split.npz")

    report = Path(_cli("analyze", str(run_dir), env=env))
    out = run_dir / "analysis"
    assert report == out / "report.html" and (out / "report.md").exists()
    for name in ("projections_block2.png", "tensor_product_paths.png", "learning_curve.png",
                 "utilization.png"):
        assert (out / name).stat().st_size > 1000, name
    assert len(list(out.glob("extremes_*.png"))) == 1
    assert "data:image/png;base64," in report.read_text()
    assert "Probe R² is not computed (NaN): 9 test molecules" in (out / "report.md").read_text()
    with open(out / "utilization.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["l"]) for r in rows] == [0, 1, 2]
    assert [int(r["columns"]) for r in rows] == [4, 12, 20]

    saved = np.load(out / "embeddings.npz")
    np.testing.assert_array_equal(saved["test_indices"], chosen)
    from irrepscope.train.run import load_run_dataset

    for key in ("IRREPSCOPE_QM9_DIR", "IRREPSCOPE_DATA_DIR"):  # this test only
        monkeypatch.setenv(key, env[key])
    dataset = load_run_dataset(run_dir, progress=False)
    assert list(saved["smiles"]) == [dataset.smiles[i] for i in chosen]
    np.testing.assert_allclose(saved["energy_true"], [float(dataset[int(i)].y) for i in chosen],
                               rtol=1e-6)

    # a copy (analysis included; compare analysing a fresh run is covered by the unit tests)
    run_b = run_dir.parent / "run_b"
    shutil.copytree(run_dir, run_b)
    compare = Path(_cli("compare", str(run_dir), str(run_b), "--out",
                        str(run_dir.parent / "cmp"), env=env))
    assert compare.exists() and (compare.parent / "report.md").exists()
    assert len(list(compare.parent.glob("projections_run_*.png"))) == 2
    md = (compare.parent / "report.md").read_text()
    assert "run_a" in md and "run_b" in md and "test MSE" in md


def test_analyze_errors_are_one_line(tiny_run, tmp_path, capsys) -> None:
    from irrepscope.cli import main

    assert main(["analyze", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "irrepscope train" in err and "missing" in err
    assert not (tmp_path / "missing").exists()  # nothing created for a wrong path
    (tmp_path / "file").write_text("")
    assert main(["analyze", str(tmp_path / "file")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a file, not a run directory" in err
    assert main(["compare", str(tiny_run[0]), "--out", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_a_pruned_run_is_analysed_and_compared_like_any_run(tiny_run) -> None:
    import json

    run_dir, env = tiny_run
    pruned = run_dir.parent / "pruned"
    assert Path(_cli("prune", str(run_dir), "--out", str(pruned), "--drop", "2", "--epochs", "0",
                     env=env)) == pruned
    record = json.loads((pruned / "pruned_from.json").read_text())
    assert record["orders_after"] == {"spherical_harmonics": [0, 1, 2], "hidden": [0, 1]}
    report = Path(_cli("analyze", str(pruned), env=env))
    summary = json.loads((report.parent / "summary.json").read_text())
    assert (summary["orders"], summary["sh_orders"]) == ([0, 1], [0, 1, 2])
    assert summary["test_mse"] == pytest.approx(record["errors"]["pruned"]["test_mse"])
    with open(report.parent / "utilization.csv") as handle:
        assert [int(r["l"]) for r in csv.DictReader(handle)] == [0, 1]
    md = (report.parent / "report.md").read_text()
    assert "L=[0, 1] (spherical harmonics [0, 1, 2])" in md
    assert "Pruned from another run" in md and "pruned, before fine-tuning" in md
    info = _cli("model", "info", "--run", str(pruned), env=env)
    assert "composition baseline" in info
    compare = Path(_cli("compare", str(run_dir), str(pruned), "--out",
                        str(run_dir.parent / "cmp_pruned"), env=env))
    md = (compare.parent / "report.md").read_text()
    assert "| pruned | [0, 1] |" in md
