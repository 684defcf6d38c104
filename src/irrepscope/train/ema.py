"""Exponential moving average of the weights (``train.ema_decay``), as a Lightning callback.

After every optimizer step ``ema = d * ema + (1 - d) * weights`` with
``d = min(ema_decay, (1 + n) / (10 + n))`` after ``n`` updates (the warm-up of torch_ema and
nequip, so the first steps do not tie the average to the initial weights). The average is what
validation sees (and so what picks best.ckpt); checkpoints store it as the model's weights, so
testing, ``load_trained_model`` and the analysis use it too. The training weights travel in the
callback's state, and ``--resume`` restores both exactly.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

PREFIX = "model."  # EnergyModule keeps the EquivariantGNN in .model


def decay_at(decay: float, num_updates: int) -> float:
    """Decay of update number ``num_updates`` (0-based)."""
    return min(decay, (1.0 + num_updates) / (10.0 + num_updates))


class WeightAverage(L.Callback):
    """Keeps the EMA of ``pl_module.model``'s parameters; swaps it in for validation."""

    def __init__(self, decay: float) -> None:
        super().__init__()
        self.decay = float(decay)
        self.num_updates = 0
        self.shadow: dict[str, torch.Tensor] = {}
        self._pending: dict[str, torch.Tensor] | None = None  # training weights from a ckpt
        self._stash: dict[str, torch.Tensor] | None = None  # training weights while swapped

    @staticmethod
    def _params(pl_module: L.LightningModule) -> dict[str, torch.Tensor]:
        return dict(pl_module.model.named_parameters())

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Start the average (fresh run), or restore average + training weights (resume)."""
        params = self._params(pl_module)
        with torch.no_grad():
            self.shadow = {name: p.detach().clone() for name, p in params.items()}
            if self._pending is not None:  # the loaded state_dict held the average
                for name, p in params.items():
                    p.copy_(self._pending[name].to(p.device))
                self._pending = None

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        """One EMA update after the optimizer step."""
        weight = 1.0 - decay_at(self.decay, self.num_updates)
        with torch.no_grad():
            for name, p in self._params(pl_module).items():
                self.shadow[name].lerp_(p.detach(), weight)
        self.num_updates += 1

    def _swap(self, pl_module: L.LightningModule, to_average: bool) -> None:
        params = self._params(pl_module)
        with torch.no_grad():
            if to_average:
                self._stash = {name: p.detach().clone() for name, p in params.items()}
                source = self.shadow
            else:
                assert self._stash is not None
                source, self._stash = self._stash, None
            for name, p in params.items():
                p.copy_(source[name])

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Validate the average (during fit only)."""
        if trainer.state.fn == "fit" and self.shadow:
            self._swap(pl_module, to_average=True)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Back to the training weights."""
        if self._stash is not None:
            self._swap(pl_module, to_average=False)

    def state_dict(self) -> dict[str, Any]:
        """Decay, update count and the training weights (the average goes in state_dict)."""
        return {"decay": self.decay, "num_updates": self.num_updates,
                "training_weights": {k: v.detach().cpu().clone()
                                     for k, v in self._stash_or_live().items()}}

    def _stash_or_live(self) -> dict[str, torch.Tensor]:
        return self._stash if self._stash is not None else self._live

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Remember the module whose weights are averaged."""
        self._module = pl_module

    @property
    def _live(self) -> dict[str, torch.Tensor]:
        return self._params(self._module)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Keep the training weights until ``on_train_start`` (after the model is restored)."""
        self.num_updates = int(state_dict["num_updates"])
        self._pending = dict(state_dict["training_weights"])

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        """Store the average as the model's weights."""
        if not self.shadow:
            return
        state = checkpoint["state_dict"]
        for name, value in self.shadow.items():
            state[PREFIX + name] = value.detach().clone()
