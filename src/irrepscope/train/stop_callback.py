"""The Lightning side of ``train.stopping``: signals wait for a training-batch boundary, where
every process learns of them and all stop together.

Lightning installs its own SIGTERM handler when ``fit`` or ``test`` starts; in 2.6 it broadcasts
over the process group from inside that handler, which hangs DDP when the signal interrupts
another collective (it hangs 2-process CPU training here, with or without irrepscope). This
callback puts ``train.stopping``'s handlers back in its place (only inside
``stop_on_signals``: library users keep Lightning's own behaviour), so a signal is only
recorded. At the end of every training batch, when an epoch starts (right after the previous
one was committed) and when training or testing ends, the processes all-reduce whether any of
them received one (every process passes these points equally often) and all raise ``Stopped``
at the same point.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from irrepscope.train.stopping import Stopped, defer_signals, received_signal


class StopAtBatchEnd(L.Callback):
    """Defers SIGTERM/SIGINT during ``fit`` and ``test``; stops every process together at a
    training-batch boundary."""

    def __init__(self) -> None:
        super().__init__()
        self.active = False  # inside stop_on_signals, between a start and an end

    def _defer(self, on: bool) -> None:
        self.active = defer_signals(on) and on

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """After Lightning has installed its handlers: ours instead."""
        self._defer(True)

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The test set is evaluated to the end (shards differ in length: no common boundary)."""
        self._defer(True)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Every process stops here when any received a signal since the last batch; then
        signals stop at once again."""
        try:
            self._stop_if_signalled(trainer)
        finally:
            self._defer(False)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """As ``on_train_end``, after the test set."""
        try:
            self._stop_if_signalled(trainer)
        finally:
            self._defer(False)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule,
                     exception: BaseException) -> None:
        """Signals stop at once again."""
        self._defer(False)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Stop before training an epoch when a signal came during the previous one's end."""
        self._stop_if_signalled(trainer)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        """Stop every process here when any received a signal."""
        self._stop_if_signalled(trainer)

    def _stop_if_signalled(self, trainer: L.Trainer) -> None:
        if not self.active:
            return
        signum = received_signal() or 0
        if trainer.world_size > 1:  # the same number of training batches on every process
            flag = torch.tensor([float(signum)], device=trainer.strategy.root_device)
            signum = int(trainer.strategy.reduce(flag, reduce_op="max").item())
        if signum:
            raise Stopped(signum)
