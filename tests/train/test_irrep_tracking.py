"""train.track_irreps on tiny QM9 runs: what is recorded, exact resume, no effect on weights."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from irrepscope.errors import ConfigError
from irrepscope.train.run import train
from irrepscope.train.run_records import TRACKING_FILE, read_metrics

TIMING = {"seconds"}  # wall clock: the only column allowed to differ between two runs
TRACKED = ("train.track_irreps=2", "train.track_irreps_molecules=5", "model.irrep_dropout=0.2")


@pytest.fixture(scope="module")
def runs(tiny_config, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """'straight': 3 tracked epochs; 'resumed': 1 epoch, then --resume to 3 (its CSV after the
    first half saved as 'half_csv'); 'untracked': 3 epochs without tracking."""
    root = tmp_path_factory.mktemp("tracking")
    straight = train(tiny_config("train.max_epochs=3", *TRACKED), root / "straight")
    resumed = train(tiny_config("train.max_epochs=1", *TRACKED), root / "resumed")
    half = read_metrics(resumed / TRACKING_FILE)
    (resumed / TRACKING_FILE).unlink()  # as if killed after last.ckpt: the resume repairs it
    train(tiny_config("train.max_epochs=3", *TRACKED), resumed, resume=True)
    untracked = train(tiny_config("train.max_epochs=3", "model.irrep_dropout=0.2"),
                      root / "untracked")
    return {"straight": straight, "resumed": resumed, "untracked": untracked, "half": half}


def _without_timing(rows: list[dict]) -> list[dict]:
    return [{k: ("nan" if isinstance(v, float) and math.isnan(v) else v)
             for k, v in r.items() if k not in TIMING} for r in rows]


def test_rows_every_n_epochs_per_block_and_l(runs) -> None:
    rows = read_metrics(runs["straight"] / TRACKING_FILE)
    # before training, after epoch 2 (every 2) and after the last epoch, 3
    assert sorted({r["epochs_trained"] for r in rows}) == [0, 2, 3]
    blocks = 3  # num_layers=1: input block, one hidden block, output block
    assert len(rows) == 3 * blocks * 3  # records x blocks x orders [0, 1, 2]
    for record in (0, 2, 3):
        mine = [r for r in rows if r["epochs_trained"] == record]
        for block in range(blocks):
            shares = [r["variance_share"] for r in mine if r["block"] == block]
            assert sum(shares) == pytest.approx(1.0)
        last = [r for r in mine if r["block"] == blocks - 1]
        assert all(math.isfinite(r["ablation_rel_mse"]) for r in last)
        assert all(math.isnan(r["ablation_rel_mse"]) for r in mine if r["block"] < blocks - 1)
        assert all(r["molecules"] == r["ablation_molecules"] == 5 and r["seconds"] > 0
                   for r in mine)
        assert all(math.isnan(r["probe_r2_energy"]) for r in mine)  # 5 molecules < 30


def test_resume_continues_the_series_exactly(runs) -> None:
    assert sorted({r["epochs_trained"] for r in runs["half"]}) == [0, 1]  # the last epoch, 1
    straight = read_metrics(runs["straight"] / TRACKING_FILE)
    resumed = read_metrics(runs["resumed"] / TRACKING_FILE)
    # epochs_trained=1 was the first half's last epoch; the resumed run's record keeps it
    assert _without_timing(resumed) == _without_timing(
        [r for r in runs["half"] if r["epochs_trained"] <= 1]
        + [r for r in straight if r["epochs_trained"] > 1])
    before = [r for r in straight if r["epochs_trained"] == 0]
    assert _without_timing(before) == _without_timing(
        [r for r in resumed if r["epochs_trained"] == 0])


def test_tracking_leaves_the_weights_unchanged(runs) -> None:
    tracked = torch.load(runs["straight"] / "last.ckpt", weights_only=True)["state_dict"]
    plain = torch.load(runs["untracked"] / "last.ckpt", weights_only=True)["state_dict"]
    assert tracked.keys() == plain.keys()
    for key, value in tracked.items():
        assert torch.equal(value, plain[key]), key
    assert not (runs["untracked"] / TRACKING_FILE).exists()


def test_bad_settings(tiny_config) -> None:
    with pytest.raises(ConfigError, match="track_irreps must be a number of epochs >= 1"):
        tiny_config("train.track_irreps=0")
    with pytest.raises(ConfigError, match="track_irreps_molecules must be >= 2"):
        tiny_config("train.track_irreps_molecules=1")
