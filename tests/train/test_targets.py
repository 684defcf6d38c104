"""Multi-target runs: the loss is the weighted sum of per-target losses; metrics and records."""

from __future__ import annotations

import json

import lightning as L
import pytest
import torch
from torch_geometric.loader import DataLoader

from irrepscope.train.datamodule import cached_dataset
from irrepscope.train.module import EnergyModule
from irrepscope.train.run import load_trained_model, read_test_metrics, train
from irrepscope.train.run_records import read_metrics
from irrepscope.train.target_baseline import TARGETS_FILE

ALL = "train.targets={energy: 1.0, charges: 2.0, dipole: 0.5, quadrupole: 0.25}"


def test_loss_is_the_weighted_sum_of_per_target_losses(tiny_config):
    config = tiny_config(ALL)
    L.seed_everything(0, verbose=False)
    module = EnergyModule(config)
    module.loss_scales = {"charges": 0.2, "dipole": 0.3, "quadrupole": 0.7}
    dataset = cached_dataset(config, progress=False)
    batch = next(iter(DataLoader([dataset[i] for i in range(6)], batch_size=6)))
    loss = module._step(batch, "val")
    out = module.model.predict(batch, normalized=True)
    expected = {
        "energy": (out["energy"] - module.model.normalized_target(batch)).pow(2).mean(),
        "charges": ((out["charges"] - batch.charges) / 0.2).pow(2).mean(),
        "dipole": ((out["dipole"] - batch.dipole) / 0.3).pow(2).mean(),
        "quadrupole": ((out["quadrupole"] - batch.quadrupole) / 0.7).pow(2).mean(),
    }
    for name, value in expected.items():
        torch.testing.assert_close(module.last_losses[name], value)
    total = 1.0 * expected["energy"] + 2.0 * expected["charges"] + 0.5 * expected["dipole"] \
        + 0.25 * expected["quadrupole"]
    torch.testing.assert_close(loss, total)
    # the epoch's val_loss from the float64 sums is the same weighted sum
    module.trainer = type("T", (), {"world_size": 1})()  # _log_stage only asks for world_size
    module.log = lambda *args, **kwargs: None
    module._log_stage("val")
    assert module.epoch_metrics["val_loss"] == pytest.approx(float(total.detach()), rel=1e-5)
    assert module.epoch_metrics["val_count"] == 6
    assert module.epoch_metrics["val_charges_count"] == batch.z.shape[0]
    dipole_err = (out["dipole"] - batch.dipole).norm(dim=-1).mean()
    assert module.epoch_metrics["val_dipole_mae"] == pytest.approx(float(dipole_err), rel=1e-5)


def test_a_run_without_the_energy_trains_and_records_every_target(tiny_config, tmp_path):
    config = tiny_config("train.targets={charges: 1, dipole: 1, quadrupole: 1}")
    run = train(config, tmp_path / "run")
    metrics = read_test_metrics(run)
    assert "test_mse" not in metrics
    for name in ("charges", "dipole", "quadrupole"):
        assert metrics[f"test_{name}_mae"] > 0
        assert metrics[f"baseline_test_{name}_zero_mae"] > 0
    assert 0 <= metrics["test_dipole_angle_deg"] <= 180
    assert metrics["baseline_test_charges_element_mean_mae"] < \
        metrics["baseline_test_charges_zero_mae"]
    rows = read_metrics(run / "metrics.csv")
    assert len(rows) == 2 and rows[-1]["val_loss"] > 0 and rows[-1]["val_dipole_mae"] > 0
    assert (run / "best.ckpt").exists()
    scales = json.loads((run / TARGETS_FILE).read_text())["loss_scales"]
    assert set(scales) == {"charges", "dipole", "quadrupole"}
    model, _ = load_trained_model(run)
    assert set(model.target_heads.heads) == {"charges", "dipole", "quadrupole"}


def test_energy_only_records_keep_their_layout(tiny_config, tmp_path):
    run = train(tiny_config("train.max_epochs=1"), tmp_path / "run")
    assert not (run / TARGETS_FILE).exists()
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert "loss" not in header and "dipole" not in header
    assert set(read_test_metrics(run)) >= {"test_mse", "test_mae", "test_count"}


def test_reduce_on_plateau_watches_the_weighted_loss_of_multi_target_runs(tiny_config):
    from irrepscope.train.schedules import build_scheduler

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    for targets, monitor in (("{energy: 1}", "val_mse"), ("{energy: 1, dipole: 1}", "val_loss")):
        config = tiny_config("train.lr_schedule=reduce_on_plateau", f"train.targets={targets}")
        assert build_scheduler(optimizer, config.train, 100)["monitor"] == monitor
