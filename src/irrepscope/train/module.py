"""LightningModule: MSE loss on normalized energies (and other targets), exact epoch metrics.

Loss: ``mean((E_pred - E_true)^2) / scale^2``, targets normalized by the model's energy
reference (``model.references``: label mean/std, or fitted element energies and residual
std); with ``train.targets`` the weighted sum of such per-target losses (``train.targets``,
which also names the charges/dipole/quadrupole metrics and ``loss_{target}`` per step).
Metrics per stage (``train``/``val``/``test``) and epoch: ``{stage}_mse`` (eV^2),
``{stage}_mae`` (eV), ``{stage}_mae_mev`` (meV), ``{stage}_count`` (molecules). They are kept as
sums (squared error, absolute error, count) in float64 and sum-reduced over DDP ranks at the end
of the epoch, so every molecule counts exactly once whatever the number of processes (the
evaluation samplers in ``datamodule`` shard without padding). Optimiser: AdamW (Table 2) with
the schedule of ``train.schedules``.
"""

from __future__ import annotations

import random
import time
from typing import Any

import lightning as L
import numpy as np
import torch

from irrepscope.errors import IrrepscopeError
from irrepscope.model.gnn import build_model
from irrepscope.train.config import RunConfig
from irrepscope.train.schedules import build_scheduler
from irrepscope.train.targets import (
    SUM_FIELDS,
    energy_only,
    epoch_loss,
    error_sums,
    losses,
    predictions,
    stage_metrics,
    weighted_loss,
)

STAGES = ("train", "val", "test")


class NonFiniteLossError(IrrepscopeError):
    """The loss became NaN or Inf; training stopped before the poisoned step was applied."""


class EnergyModule(L.LightningModule):
    """Wraps ``EquivariantGNN`` for training; ``self.model`` is the plain ``nn.Module``."""

    def __init__(self, config: RunConfig) -> None:
        super().__init__()
        self.config = config
        self.save_hyperparameters({"config": config.to_dict()})
        self.model = build_model(config)
        self.targets = dict(config.train.targets)
        self.loss_scales: dict[str, float] = {}  # per non-energy target (set at fit set-up)
        self.last_losses: dict[str, torch.Tensor] = {}  # per target, of the latest batch
        self._sums = {stage: self._zero_sums() for stage in STAGES}
        self._epoch_start = time.perf_counter()
        self._train_time = 0.0
        self.epoch_metrics: dict[str, float] = {}  # latest value of every epoch metric

    # --- forward and loss ------------------------------------------------------------------
    def forward(self, batch: Any) -> torch.Tensor:
        """Energies [num_molecules] in eV."""
        return self.model(batch)

    def _zero_sums(self) -> dict[str, torch.Tensor]:
        return {name: torch.zeros(len(SUM_FIELDS[name]), dtype=torch.float64)
                for name in self.targets}

    def _step(self, batch: Any, stage: str) -> torch.Tensor:
        """Weighted loss of one batch; accumulates the stage's error sums of every target."""
        self.last_losses = self.target_losses(batch, stage)
        return weighted_loss(self.last_losses, self.targets)

    def target_losses(self, batch: Any, stage: str | None = None) -> dict[str, torch.Tensor]:
        """Per-target losses of one batch (adds its error sums to ``stage``'s when given)."""
        pairs = predictions(self.model, batch, self.targets)
        if stage is not None:
            for name, (pred, true) in pairs.items():
                sums = error_sums(name, pred, true, self.model.energy_scale)
                self._sums[stage][name] = self._sums[stage][name].to(sums.device) + sums
        return losses(pairs, self.loss_scales)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """Loss of one training batch; raises ``NonFiniteLossError`` on NaN/Inf (all ranks)."""
        loss = self._step(batch, "train")
        self._check_finite(loss, batch_idx)
        done = self._molecules(self._sums["train"]) - int(batch.num_graphs)  # before this batch
        self.log("loss", loss.detach(), prog_bar=True, on_step=True, on_epoch=False,
                 logger=True, batch_size=int(batch.num_graphs))
        if not energy_only(self.targets):
            for name, value in self.last_losses.items():
                self.log(f"loss_{name}", value.detach(), on_step=True, on_epoch=False,
                         logger=True, batch_size=int(batch.num_graphs))
        if self._train_time > 0:  # from the second batch of the epoch on
            self.log("mol/s", done * self.trainer.world_size / self._train_time, prog_bar=True,
                     on_step=True,
                     on_epoch=False, logger=False)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Training time of the epoch so far (forward, backward and optimizer step), seconds."""
        self._train_time = time.perf_counter() - self._epoch_start

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        """Accumulate validation errors (no per-step logging: metrics are exact epoch sums)."""
        self._step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        """Accumulate test errors."""
        self._step(batch, "test")

    def _check_finite(self, loss: torch.Tensor, batch_idx: int) -> None:
        bad = (~torch.isfinite(loss.detach())).to(torch.float32)
        if self.trainer.world_size > 1:  # every rank must stop together, or the others hang
            bad = self.trainer.strategy.reduce(bad, reduce_op="sum")
        if float(bad) > 0:
            raise NonFiniteLossError(
                f"training loss is {float(loss.detach()):g} (not finite) at global step "
                f"{self.global_step} (epoch {self.current_epoch}, batch {batch_idx}"
                f"{'' if self.trainer.world_size == 1 else ', on some rank'}); stopped before "
                f"applying it, no checkpoint written from these weights. The last good "
                f"checkpoint (if any) is last.ckpt; try a smaller train.lr or "
                f"train.gradient_clip_val."
            )

    # --- epoch bookkeeping -----------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        """Reset the training sums and the throughput clock."""
        self._sums["train"] = self._zero_sums()
        self._epoch_start = time.perf_counter()
        self._train_time = 0.0

    def on_validation_epoch_start(self) -> None:
        """Reset the validation sums."""
        self._sums["val"] = self._zero_sums()

    def on_test_epoch_start(self) -> None:
        """Reset the test sums."""
        self._sums["test"] = self._zero_sums()

    def on_validation_epoch_end(self) -> None:
        """Log exact validation MSE/MAE over all ranks."""
        if not self.trainer.sanity_checking:
            self._log_stage("val")

    def on_test_epoch_end(self) -> None:
        """Log exact test MSE/MAE over all ranks."""
        self._log_stage("test")

    def on_train_epoch_end(self) -> None:
        """Log train MSE/MAE (running over the epoch's batches), throughput and lr."""
        count = self._log_stage("train")
        extra = {"train_mol_per_s": count / max(self._train_time, 1e-9),
                 "lr": float(self.optimizers().param_groups[0]["lr"])}
        for name, value in extra.items():
            self.log(name, value, on_epoch=True, sync_dist=False)
        self.epoch_metrics.update(extra)

    def _log_stage(self, stage: str) -> float:
        """Reduce the stage's sums over ranks, log every target's metrics (``train.targets``);
        returns the number of molecules (atoms for a charges-only run)."""
        sums = {}
        for name, value in self._sums[stage].items():
            value = value.to(self.device)
            if self.trainer.world_size > 1:
                value = self.trainer.strategy.reduce(value.clone(), reduce_op="sum")
            sums[name] = value
        values: dict[str, float] = {}
        for name, value in sums.items():
            values.update(stage_metrics(stage, name, value))
        if not energy_only(self.targets):
            values.update(epoch_loss(stage, sums, self.targets, self.loss_scales,
                                     self.model.energy_scale))
        for name, value in values.items():
            self.log(name, value, on_epoch=True, prog_bar=name in ("val_mae", "val_loss"),
                     sync_dist=False)
        self.epoch_metrics.update(values)
        return self._molecules(sums)

    def _molecules(self, sums: dict[str, torch.Tensor]) -> float:
        """Molecules counted in ``sums`` (a charges-only run counts atoms, so it uses those)."""
        name = next((t for t in self.targets if t != "charges"), "charges")
        return float(sums[name][-1])

    # --- optimiser and checkpoint extras ---------------------------------------------------
    def configure_optimizers(self) -> Any:
        """AdamW with the config's learning rate and weight decay, and its lr schedule."""
        t = self.config.train
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=t.lr,
                                      weight_decay=t.weight_decay)
        scheduler = build_scheduler(optimizer, t, int(self.trainer.estimated_stepping_batches))
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the RNG states, so that a resumed run continues bit-for-bit (dropout etc.)."""
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        checkpoint["rng_states"] = {  # tensors and ints only: loadable with weights_only=True
            "torch": torch.get_rng_state(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
            "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the RNG states saved by ``on_save_checkpoint`` (when present)."""
        states = checkpoint.get("rng_states")
        if not states:
            return
        torch.set_rng_state(states["torch"])
        kind, keys, pos, has_gauss, cached = states["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        version, internal, gauss = states["python"]
        random.setstate((version, tuple(internal), gauss))
        if states["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states["cuda"])


def normalized_error(model: torch.nn.Module, batch: Any) -> torch.Tensor:
    """(E_pred - E_true) / energy_scale per molecule [B], from the model's normalized output."""
    pred = model(batch, normalized=True)
    return pred - model.normalized_target(batch).to(pred.dtype)


def model_state_dict(checkpoint: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The ``EquivariantGNN`` weights inside a Lightning checkpoint of ``EnergyModule``."""
    prefix = "model."
    return {k[len(prefix):]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}


@torch.no_grad()
def evaluate(model: torch.nn.Module, graphs: Any, batch_size: int = 64) -> dict[str, float]:
    """Single-process test metrics of ``model`` over ``graphs`` (a sequence of PyG Data).

    Returns ``mse`` (eV^2), ``mae`` (eV), ``mae_mev`` (meV) and ``count``, the same quantities
    (and float64 accumulation) as the ``test_*`` metrics of a run.
    """
    from torch_geometric.loader import DataLoader

    model.eval()
    sse = sae = 0.0
    count = 0
    for batch in DataLoader(graphs, batch_size=batch_size, shuffle=False):
        err = normalized_error(model, batch).to(torch.float64) * model.energy_scale
        sse += float(err.pow(2).sum())
        sae += float(err.abs().sum())
        count += err.numel()
    if count == 0:
        raise ValueError("evaluate() needs at least one molecule")
    return {"mse": sse / count, "mae": sae / count, "mae_mev": 1000.0 * sae / count,
            "count": count}
