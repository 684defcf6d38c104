"""Whole runs on 64 real QM9 molecules: layout, exact resume, same seed, reading runs back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from irrepscope.data.splits import load_split
from irrepscope.errors import ConfigError, RunDirError
from irrepscope.train.config import load_config
from irrepscope.train.module import evaluate
from irrepscope.train.run import (
    load_run_dataset,
    load_run_split,
    load_trained_model,
    train,
    train_from_config_file,
)
from irrepscope.train.run_records import METRIC_COLUMNS, read_metrics

TIMING = {"epoch_time_s", "train_mol_per_s"}  # wall-clock columns, the only ones that may differ


@pytest.fixture(scope="module")
def runs(tiny_config, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """'straight': 4 epochs; 'resumed': 2 epochs, then --resume to 4; 'other_seed': 1 epoch."""
    root = tmp_path_factory.mktemp("runs")
    straight = train(tiny_config("train.max_epochs=4", "model.irrep_dropout=0.2"),
                     root / "straight")
    resumed = train(tiny_config("train.max_epochs=2", "model.irrep_dropout=0.2"), root / "resumed")
    first_half = {name: (resumed / name).read_bytes() for name in ("last.ckpt", "metrics.csv")}
    train(tiny_config("train.max_epochs=4", "model.irrep_dropout=0.2"), resumed, resume=True)
    (root / "first_half").mkdir()
    for name, data in first_half.items():
        (root / "first_half" / name).write_bytes(data)
    other = train(tiny_config("seed=6", "train.max_epochs=1", "model.irrep_dropout=0.2"),
                  root / "other_seed")
    return {"straight": straight, "resumed": resumed, "first_half": root / "first_half",
            "other_seed": other}


def _ckpt(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_run_directory_layout(runs: dict[str, Path]) -> None:
    run = runs["straight"]
    for name in ("config.yaml", "split.npz", "metrics.csv", "last.ckpt", "best.ckpt",
                 "versions.json", "test_metrics.json", "baseline.json"):
        assert (run / name).is_file(), name
    assert not list(run.glob(".*tmp*")), "temporary files left behind"
    config = load_config(run / "config.yaml")
    assert config.train.max_epochs == 4 and config.model.hidden == 4
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert set(resolved) == {"seed", "data", "model", "train"}
    assert "label_std" in resolved["model"] and "lr" in resolved["train"]  # defaults written out
    versions = json.loads((run / "versions.json").read_text())
    assert {"torch", "e3nn", "lightning", "irrepscope", "python"} <= set(versions)
    rows = read_metrics(run / "metrics.csv")
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3]
    assert [r["step"] for r in rows] == [7, 14, 21, 28]  # 52 training molecules, batch 8
    assert tuple(rows[0]) == METRIC_COLUMNS
    for row in rows:
        assert row["val_mse"] > 0 and row["train_mse"] > 0
        assert row["val_mae_mev"] == pytest.approx(1000 * row["val_mae"])
        assert row["val_mae"] ** 2 <= row["val_mse"] * (1 + 1e-12)
    test = json.loads((run / "test_metrics.json").read_text())
    best = min(range(4), key=lambda e: rows[e]["val_mse"])
    assert test["epoch"] == best and test["checkpoint"] == "best.ckpt"
    assert test["test_count"] == 6 and test["epochs_trained"] == 4
    model, _ = load_trained_model(run)
    assert test["parameters"] == sum(p.numel() for p in model.parameters())
    assert _ckpt(run / "best.ckpt")["epoch"] == best and _ckpt(run / "last.ckpt")["epoch"] == 3


def test_resume_equals_uninterrupted_run(runs: dict[str, Path]) -> None:
    straight, resumed = _ckpt(runs["straight"] / "last.ckpt"), _ckpt(runs["resumed"] / "last.ckpt")
    half = _ckpt(runs["first_half"] / "last.ckpt")
    assert half["epoch"] == 1 and straight["epoch"] == resumed["epoch"] == 3
    assert straight["global_step"] == resumed["global_step"] == 28
    for key, value in straight["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key
    assert any(not torch.equal(v, half["state_dict"][k])  # it did train on after the resume
               for k, v in straight["state_dict"].items())
    for a, b in zip(straight["optimizer_states"][0]["state"].values(),
                    resumed["optimizer_states"][0]["state"].values(), strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    rows_a = read_metrics(runs["straight"] / "metrics.csv")
    rows_b = read_metrics(runs["resumed"] / "metrics.csv")
    assert len(rows_a) == len(rows_b) == 4
    for a, b in zip(rows_a, rows_b, strict=True):
        assert {k: v for k, v in a.items() if k not in TIMING} == \
               {k: v for k, v in b.items() if k not in TIMING}
    test_a = json.loads((runs["straight"] / "test_metrics.json").read_text())
    test_b = json.loads((runs["resumed"] / "test_metrics.json").read_text())
    assert test_a["test_mse"] == test_b["test_mse"] and test_a["test_mae"] == test_b["test_mae"]


def test_same_seed_same_split_and_weights(runs: dict[str, Path]) -> None:
    a, b = load_split(runs["straight"] / "split.npz"), load_split(runs["first_half"].parent /
                                                                  "resumed" / "split.npz")
    assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("train", "val", "test"))
    rows_a = read_metrics(runs["straight"] / "metrics.csv")[:2]
    rows_half = read_metrics(runs["first_half"] / "metrics.csv")
    assert [r["train_mse"] for r in rows_a] == [r["train_mse"] for r in rows_half]
    c = load_split(runs["other_seed"] / "split.npz")
    assert not np.array_equal(a.train, c.train)
    first_other = read_metrics(runs["other_seed"] / "metrics.csv")[0]["train_mse"]
    assert first_other != rows_a[0]["train_mse"]


def test_trained_model_reproduces_test_metrics(runs: dict[str, Path]) -> None:
    run = runs["straight"]
    model, config = load_trained_model(run)
    assert not model.training and config.train.max_epochs == 4
    split, dataset = load_run_split(run), load_run_dataset(run, progress=False)
    metrics = evaluate(model, [dataset[int(i)] for i in split.test], batch_size=4)
    saved = json.loads((run / "test_metrics.json").read_text())
    assert metrics["count"] == saved["test_count"]
    assert metrics["mse"] == pytest.approx(saved["test_mse"], rel=1e-6)
    assert metrics["mae"] == pytest.approx(saved["test_mae"], rel=1e-6)
    last, _ = load_trained_model(run, checkpoint="last")
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), last.parameters(),
                                                     strict=True)) or saved["epoch"] == 3


def test_refuses_overwrite_and_mismatched_resume(runs: dict[str, Path], tiny_config,
                                                 tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="already holds a run .* --resume"):
        train(tiny_config("model.irrep_dropout=0.2"), runs["straight"])
    with pytest.raises(RunDirError, match=r"holds a run of a different config \(model.irrep_"
                                          r"dropout differ; files: config.yaml, split.npz"):
        train(tiny_config(), runs["straight"])
    with pytest.raises(ConfigError, match="cannot resume .* model.hidden changed"):
        train(tiny_config("model.irrep_dropout=0.2", "model.hidden=5"), runs["straight"],
              resume=True)
    with pytest.raises(RunDirError, match="cannot resume: there is no run in .*; run the same "
                                          "command without --resume"):
        train(tiny_config(), tmp_path / "empty", resume=True)
    (tmp_path / "config.yaml").write_text("{}\n")
    with pytest.raises(RunDirError, match="best.ckpt is missing"):
        load_trained_model(tmp_path)
    with pytest.raises(RunDirError, match="config.yaml is missing"):
        load_trained_model(tmp_path / "nowhere")


def test_train_from_config_file(tiny_settings: dict, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_settings))
    monkeypatch.chdir(tmp_path)
    run = train_from_config_file(path, ["train.max_epochs=1", "train.limit_train_batches=2"],
                                 accelerator="cpu", devices=1)
    assert run == Path("runs") / "tiny"
    assert [r["step"] for r in read_metrics(run / "metrics.csv")] == [2]
    assert load_config(run / "config.yaml").train.limit_train_batches == 2
