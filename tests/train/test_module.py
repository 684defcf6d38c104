"""EnergyModule: normalized-target loss, eV metrics, NaN/Inf stops without poisoned checkpoints."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import pytest
import torch
from torch_geometric.loader import DataLoader

from irrepscope.train.callbacks import weights_finite
from irrepscope.train.datamodule import cached_dataset
from irrepscope.train.module import EnergyModule, NonFiniteLossError, evaluate
from irrepscope.train.run import train
from irrepscope.train.run_records import read_metrics


class PoisonWeights(L.Callback):
    """Sets one weight to ``value`` before global step ``step`` (or after it, ``after=True``)."""

    def __init__(self, step: int, value: float = math.nan, after: bool = False) -> None:
        self.step, self.value, self.after = step, value, after

    def _poison(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        with torch.no_grad():
            list(module.model.parameters())[-1].view(-1)[0] = self.value  # the output bias

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:  # noqa: ANN001
        if not self.after and trainer.global_step == self.step:
            self._poison(trainer, module)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        if self.after and trainer.global_step == self.step:
            self._poison(trainer, module)


def test_loss_is_normalized_mse_and_metrics_are_ev(tiny_config) -> None:
    config = tiny_config()
    L.seed_everything(0, verbose=False)
    module = EnergyModule(config)
    dataset = cached_dataset(config, progress=False)
    graphs = [dataset[i] for i in range(10)]
    batch = next(iter(DataLoader(graphs, batch_size=10)))
    loss = module._step(batch, "test")
    energy = module(batch).detach()  # eV
    std = config.model.label_std
    expected = ((energy.double() - batch.y.double()) / std).pow(2).mean()
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5)
    sse, sae, count = module._sums["test"]["energy"].tolist()
    assert count == 10
    assert sse / count == pytest.approx(float(expected) * std**2, rel=1e-5)
    assert sae / count == pytest.approx(float((energy.double() - batch.y.double()).abs().mean()),
                                        rel=1e-5)
    metrics = evaluate(module.model, graphs, batch_size=3)
    assert metrics["count"] == 10 and metrics["mse"] == pytest.approx(sse / count, rel=1e-6)
    assert metrics["mae_mev"] == pytest.approx(1000 * sae / count, rel=1e-6)


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_loss_stops_with_the_step(tiny_config, tmp_path: Path, value: float) -> None:
    run = tmp_path / "run"
    with pytest.raises(NonFiniteLossError, match=r"not finite\) at global step 10 \(epoch 1, "
                                                 r"batch 3\).*no checkpoint written"):
        train(tiny_config("train.max_epochs=3"), run, callbacks=[PoisonWeights(10, value)])
    ckpt = torch.load(run / "last.ckpt", weights_only=True)
    assert ckpt["epoch"] == 0 and ckpt["global_step"] == 7  # epoch 0 only, from clean weights
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    assert [r["epoch"] for r in read_metrics(run / "metrics.csv")] == [0]
    assert not (run / "test_metrics.json").exists()


def test_poisoned_weights_are_never_checkpointed(tiny_config, tmp_path: Path) -> None:
    # poisoned after the last step of epoch 0: the loss was still finite, the weights are not
    with pytest.raises(NonFiniteLossError, match="weights are not finite at the end of epoch 0"):
        train(tiny_config(), tmp_path, callbacks=[PoisonWeights(7, after=True)])
    assert not (tmp_path / "last.ckpt").exists() and not (tmp_path / "best.ckpt").exists()
    assert not list(tmp_path.glob(".*tmp*"))


def test_weights_finite(tiny_config) -> None:
    module = EnergyModule(tiny_config())
    assert weights_finite(module)
    with torch.no_grad():
        list(module.parameters())[-1].view(-1)[0] = math.inf
    assert not weights_finite(module)


class RecordProgressBar(L.Callback):
    """Keeps the progress-bar metrics shown during the last training batch."""

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        self.shown = dict(trainer.progress_bar_metrics)


def test_progress_bar_shows_loss_and_throughput(tiny_config, tmp_path: Path) -> None:
    recorder = RecordProgressBar()
    train(tiny_config("train.max_epochs=1", "train.limit_train_batches=2"), tmp_path,
          callbacks=[recorder])
    assert {"loss", "mol/s"} <= set(recorder.shown)
    assert recorder.shown["mol/s"] > 0 and math.isfinite(recorder.shown["loss"])
