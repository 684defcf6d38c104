"""Learning-rate schedules: the factor curve, config errors, warm-up longer than the run."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from irrepscope.errors import ConfigError
from irrepscope.train.run import train
from irrepscope.train.run_records import read_metrics
from irrepscope.train.schedules import lr_factor


def test_warmup_cosine_and_constant_factors() -> None:
    factors = [lr_factor(s, "warmup_cosine", 4, 12, 0.1) for s in range(13)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert factors[4] == 1.0 and factors[12] == pytest.approx(0.1)
    assert factors[8] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 2)))
    assert all(a >= b for a, b in zip(factors[4:], factors[5:], strict=False))
    assert [lr_factor(s, "constant", 2, 10, 0.0) for s in (0, 1, 2, 9)] == [0.5, 1.0, 1.0, 1.0]


@pytest.mark.parametrize(("override", "message"), [
    ("train.lr_schedule=cosine", "train.lr_schedule must be one of constant, warmup_cosine, "
                                 "reduce_on_plateau, got 'cosine'"),
    ("train.warmup_steps=-1", "train.warmup_steps must be >= 0"),
    ("train.ema_decay=-0.5", r"train.ema_decay must be in \(0, 1\)"),
    ("train.ema_decay=1.5", r"train.ema_decay must be in \(0, 1\)"),
    ("train.ema_decay=1", r"train.ema_decay must be in \(0, 1\)"),
    ("train.plateau_factor=1.5", r"train.plateau_factor must be in \(0, 1\)"),
    ("train.min_lr=0.5", "train.min_lr must be >= 0 and below train.lr"),
])
def test_bad_settings_fail_at_load(tiny_config, override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tiny_config(override)


def test_plateau_takes_no_warmup(tiny_config) -> None:
    with pytest.raises(ConfigError, match="warmup_steps must be 0 with train.lr_schedule: "
                                          "reduce_on_plateau"):
        tiny_config("train.lr_schedule=reduce_on_plateau", "train.warmup_steps=5")


def test_warmup_longer_than_run_fails_before_training(tiny_config, tmp_path: Path) -> None:
    config = tiny_config("train.lr_schedule=warmup_cosine", "train.warmup_steps=14")
    with pytest.raises(ConfigError, match=r"warmup_steps=14 is not shorter than the run \(14 "
                                          r"optimizer steps"):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run" / "last.ckpt").exists()
    assert not (tmp_path / "run" / "metrics.csv").exists()


def test_reduce_on_plateau_runs_and_is_checkpointed(tiny_config, tmp_path: Path) -> None:
    config = tiny_config("train.lr_schedule=reduce_on_plateau", "train.plateau_patience=0",
                         "train.plateau_factor=0.5", "train.max_epochs=3",
                         "train.limit_train_batches=2")
    run = train(config, tmp_path / "run")
    rows = read_metrics(run / "metrics.csv")
    assert rows[0]["lr"] == pytest.approx(1e-3)
    assert all(r["lr"] in (1e-3, 5e-4, 2.5e-4, 1.25e-4) for r in rows)
    ckpt = torch.load(run / "last.ckpt", map_location="cpu", weights_only=False)
    state = ckpt["lr_schedulers"][0]
    assert state["patience"] == 0 and state["factor"] == 0.5
