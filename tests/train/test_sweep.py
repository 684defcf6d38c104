"""Sweeps: a run per config (and seed), a Table 1-style CSV/Markdown with mean ± std over seeds;
re-running resumes, never redoes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from irrepscope.errors import ConfigError
from irrepscope.train.config import load_config
from irrepscope.train.run import sweep
from irrepscope.train.run_records import read_metrics


def test_sweep_writes_table_and_is_restartable(tiny_settings: dict, tmp_path: Path) -> None:
    paths = []
    for name, orders in (("a_l012", [0, 1, 2]), ("b_l03", [0, 3])):
        settings = {**tiny_settings, "model": {**tiny_settings["model"], "orders": orders}}
        paths.append(tmp_path / f"{name}.yaml")
        paths[-1].write_text(yaml.safe_dump(settings))
    out = tmp_path / "sweep"
    overrides = ["train.max_epochs=1", "train.limit_train_batches=2"]
    result = sweep(paths, overrides, out)
    assert result == [out / "a_l012", out / "b_l03", out / "sweep.csv", out / "sweep.md"]
    with open(out / "sweep.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["orders"] for r in rows] == ["0 1 2", "0 3"]
    assert [int(r["epochs"]) for r in rows] == [1, 1] and [int(r["hidden"]) for r in rows] == [4, 4]
    assert all(float(r["test_mse"]) > 0 and float(r["wall_time_s"]) > 0 for r in rows)
    baseline = json.loads((out / "a_l012" / "baseline.json").read_text())
    assert [float(r["baseline_test_mse"]) for r in rows] == [baseline["test_mse"]] * 2
    assert int(rows[0]["parameters"]) != int(rows[1]["parameters"])
    table = (out / "sweep.md").read_text().splitlines()
    assert table[0].startswith("| L | Epochs | h | # of parameters (M) | Test MSE (eV²) | "
                               "Test MAE (eV) | Baseline test MSE (eV²) |")
    assert table[2].startswith("| [0, 1, 2] | 1 | 4 |") and len(table) == 4
    before = (out / "a_l012" / "last.ckpt").read_bytes()
    sweep(paths, overrides, out)  # finished runs are resumed: nothing is retrained
    assert (out / "a_l012" / "last.ckpt").read_bytes() == before
    assert len(read_metrics(out / "a_l012" / "metrics.csv")) == 1


def test_sweep_validates_every_config_first(tiny_settings: dict, tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(yaml.safe_dump(tiny_settings))
    bad.write_text("model: {hidden: -1}\n")
    with pytest.raises(ConfigError, match="model.hidden must be >= 1"):
        sweep([good, bad], [], tmp_path / "out")
    assert not (tmp_path / "out" / "good").exists()  # nothing trained before the error


def test_sweep_with_seeds_one_run_per_seed_and_mean_std(tiny_settings: dict,
                                                          tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_settings))  # seed 5
    out = tmp_path / "sweep"
    overrides = ["train.max_epochs=1", "train.limit_train_batches=2"]
    result = sweep([path], overrides, out, seeds=2)
    assert result == [out / "tiny_s5", out / "tiny_s6", out / "sweep.csv", out / "sweep.md",
                      out / "sweep_seeds.csv"]
    configs = [load_config(out / f"tiny_s{s}" / "config.yaml") for s in (5, 6)]
    assert [c.seed for c in configs] == [5, 6] and [c.split_seed for c in configs] == [5, 5]
    splits = [np.load(out / f"tiny_s{s}" / "split.npz") for s in (5, 6)]
    np.testing.assert_array_equal(splits[0]["test"], splits[1]["test"])  # the split is fixed
    metrics = [json.loads((out / f"tiny_s{s}" / "test_metrics.json").read_text())
               for s in (5, 6)]
    mse = [m["test_mse"] for m in metrics]
    assert mse[0] != mse[1]  # another seed: other initial weights and data order
    with open(out / "sweep.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["config"], int(r["seed"])) for r in rows] == [("tiny", 5), ("tiny", 6)]
    assert [float(r["test_mse"]) for r in rows] == mse
    with open(out / "sweep_seeds.csv") as handle:
        (summary,) = list(csv.DictReader(handle))
    assert summary["seeds"] == "5 6" and int(summary["num_seeds"]) == 2
    assert float(summary["test_mse_mean"]) == pytest.approx(np.mean(mse))
    assert float(summary["test_mse_std"]) == pytest.approx(np.std(mse, ddof=1))
    assert float(summary["baseline_test_mse_std"]) == 0.0  # same split, same baseline
    header, _, line = (out / "sweep.md").read_text().splitlines()
    assert header.endswith("| Wall time (mean per seed) | Seeds | Test MSE per seed (eV²) |")
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[4] == f"{np.mean(mse):.4g} ± {np.std(mse, ddof=1):.2g}"
    assert cells[6] == f"{metrics[0]['baseline_test_mse']:.4g}"  # shown once
    assert cells[8] == "2" and cells[9] == f"5: {mse[0]:.4g}, 6: {mse[1]:.4g}"
