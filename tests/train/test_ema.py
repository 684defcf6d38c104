"""Weight averaging: what validation and checkpoints hold, and exact resume with a schedule."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from irrepscope.train.ema import WeightAverage, decay_at
from irrepscope.train.module import evaluate
from irrepscope.train.run import load_run_dataset, load_run_split, load_trained_model, train
from irrepscope.train.run_records import read_metrics

RECIPE = ("model.energy_reference=element_least_squares", "model.readout_init=zero",
          "train.lr=0.003", "train.lr_schedule=warmup_cosine", "train.warmup_steps=3",
          "train.ema_decay=0.9", "train.max_epochs=2", "model.irrep_dropout=0.2")
TIMING = {"epoch_time_s", "train_mol_per_s"}


class StopAfterFirstEpoch(L.Callback):
    """Ends fit after epoch 0, as an interrupted run would (last.ckpt is already written)."""

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.should_stop = True


@pytest.fixture(scope="module")
def runs(tiny_config, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """'straight': 2 epochs; 'resumed': stopped after epoch 0, then --resume (same config)."""
    root = tmp_path_factory.mktemp("ema_runs")
    config = tiny_config(*RECIPE)
    straight = train(config, root / "straight")
    resumed = train(config, root / "resumed", callbacks=[StopAfterFirstEpoch()])
    assert len(read_metrics(resumed / "metrics.csv")) == 1
    train(config, resumed, resume=True)
    return {"straight": straight, "resumed": resumed}


def _ckpt(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _average_state(ckpt: dict) -> dict:
    (state,) = [v for k, v in ckpt["callbacks"].items() if k.startswith("WeightAverage")]
    return state


def test_decay_warms_up() -> None:
    assert decay_at(0.99, 0) == pytest.approx(0.1)
    assert decay_at(0.99, 10) == pytest.approx(11 / 20)
    assert decay_at(0.99, 10_000) == 0.99


def test_resume_continues_schedule_and_average_exactly(runs: dict[str, Path]) -> None:
    a, b = _ckpt(runs["straight"] / "last.ckpt"), _ckpt(runs["resumed"] / "last.ckpt")
    assert a["global_step"] == b["global_step"] == 14
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    wa, wb = _average_state(a), _average_state(b)
    assert wa["num_updates"] == wb["num_updates"] == 14
    for key, value in wa["training_weights"].items():
        assert torch.equal(value, wb["training_weights"][key]), key
    assert a["lr_schedulers"] == b["lr_schedulers"]
    for sa, sb in zip(a["optimizer_states"][0]["state"].values(),
                      b["optimizer_states"][0]["state"].values(), strict=True):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    rows_a, rows_b = (read_metrics(runs[n] / "metrics.csv") for n in ("straight", "resumed"))
    strip = [{k: v for k, v in r.items() if k not in TIMING} for r in rows_a]
    assert strip == [{k: v for k, v in r.items() if k not in TIMING} for r in rows_b]
    assert rows_a[-1]["lr"] == pytest.approx(0.0)  # the cosine reached its end


def test_checkpoints_hold_the_average_and_validation_used_it(runs: dict[str, Path]) -> None:
    run = runs["straight"]
    ckpt = _ckpt(run / "last.ckpt")
    training = _average_state(ckpt)["training_weights"]
    averaged = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}
    assert any(not torch.equal(averaged[k], v) for k, v in training.items())
    model, _ = load_trained_model(run, checkpoint="last")
    split, dataset = load_run_split(run), load_run_dataset(run, progress=False)
    val = evaluate(model, [dataset[int(i)] for i in split.val], batch_size=4)
    assert val["mse"] == pytest.approx(read_metrics(run / "metrics.csv")[-1]["val_mse"],
                                       rel=1e-6)


def test_average_of_constant_weights_is_those_weights() -> None:
    average = WeightAverage(0.5)
    module = torch.nn.Module()
    module.model = torch.nn.Linear(2, 1)
    average.setup(None, module, "fit")
    average.on_train_start(None, module)
    before = {k: v.clone() for k, v in module.model.state_dict().items()}
    for step in range(3):
        average.on_train_batch_end(None, module, None, None, step)
    for key, value in average.shadow.items():
        assert torch.allclose(value, before[key])
    assert average.num_updates == 3
