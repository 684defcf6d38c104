"""DDP with 2 CPU processes (gloo) through the CLI: it trains, and its test metrics are exact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from irrepscope.train.module import evaluate
from irrepscope.train.run import load_run_dataset, load_run_split, load_trained_model
from irrepscope.train.run_records import TRACKING_FILE, read_metrics


def test_ddp_two_cpu_processes_match_single_process(tiny_settings: dict, tmp_path: Path) -> None:
    # 60 molecules: 45 train (odd: padded shards), 6 val, 9 test; with eval batches of 4 the
    # ranks evaluate different numbers of test batches (5 molecules = 2 batches vs 4 = 1)
    settings = {**tiny_settings, "data": {**tiny_settings["data"], "subset": 60,
                                          "fractions": [0.75, 0.1, 0.15]}}
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(settings))
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, "-m", "irrepscope.cli", "train", "--config", str(config), "--run-dir",
         str(run), "--devices", "2", "--strategy", "ddp", "--accelerator", "cpu",
         "--set", "train.eval_batch_size=4", "--set", "train.track_irreps=1"],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in result.stderr + result.stdout
    rows = read_metrics(run / "metrics.csv")
    assert [r["epoch"] for r in rows] == [0, 1]
    assert [r["step"] for r in rows] == [3, 6]  # 45 molecules / 2 ranks = 23 each, batch 8
    tracked = read_metrics(run / TRACKING_FILE)  # rank 0 measures and writes, once per epoch
    assert [r["epochs_trained"] for r in tracked if r["l"] == 0 and r["block"] == 0] == [0, 1, 2]
    saved = json.loads((run / "test_metrics.json").read_text())
    assert saved["test_count"] == 9  # every test molecule once: no DistributedSampler padding

    model, _ = load_trained_model(run)
    split, dataset = load_run_split(run), load_run_dataset(run, progress=False)
    torch.set_num_threads(1)
    single = evaluate(model, [dataset[int(i)] for i in split.test], batch_size=5)
    assert single["count"] == saved["test_count"]
    assert single["mse"] == pytest.approx(saved["test_mse"], rel=1e-6)
    assert single["mae"] == pytest.approx(saved["test_mae"], rel=1e-6)
    last, _ = load_trained_model(run, "last")
    val = evaluate(last, [dataset[int(i)] for i in split.val], batch_size=6)
    assert val["mse"] == pytest.approx(rows[-1]["val_mse"], rel=1e-6)  # val is exact too
