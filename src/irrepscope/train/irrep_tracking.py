"""Use of each order l over training (``train.track_irreps: N``): an opt-in Lightning callback.

Before the first epoch and after every N-th epoch (and after the last), the model is measured on
a fixed subset of the validation molecules (``train.track_irreps_molecules``, drawn once with
the run seed): per block and l the variance share of the pooled embedding and the ridge-probe R²
of the energy from l's invariant features, and per l the ablation (relative MSE change with l
zeroed in every block, in the last block's rows) on the first 128 of those molecules.
``model.usage.usage_rows`` computes them.

The measurement runs inside validation, so with ``train.ema_decay`` it sees the averaged
weights, the ones validation scores and checkpoints store. It uses no global random state, so a
run's weights are the same with tracking on or off. The rows travel in the callback's state in
every checkpoint, and ``run_records.commit_epoch`` rewrites ``irreps_over_training.csv`` from
them right after last.ckpt: a resumed run continues the series with no epoch repeated or
missing. Under DDP only rank 0 measures and writes.
"""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import numpy as np
import torch

from irrepscope.errors import ConfigError
from irrepscope.model.usage import usage_rows
from irrepscope.train.run_records import TRACKING_KEY

BATCH_SIZE = 64
# The ablation's |L| passes are the record's cost: they use the first two batches (128 molecules).
ABLATION_BATCHES = 2


class IrrepTracker(L.Callback):
    """Records ``usage_rows`` of the model every ``every`` epochs on ``molecules`` validation
    molecules (seeded by ``seed``); rows are keyed by ``epochs_trained`` (0: initial weights)."""

    def __init__(self, every: int, molecules: int, seed: int) -> None:
        super().__init__()
        self.every, self.molecules, self.seed = int(every), int(molecules), int(seed)
        self.rows: list[dict[str, Any]] = []
        self._batches: list[Any] | None = None

    @property
    def state_key(self) -> str:
        """Fixed key of this callback's state in ``checkpoint["callbacks"]``."""
        return TRACKING_KEY

    def state_dict(self) -> dict[str, Any]:
        """Every row recorded so far (plain data), stored in each checkpoint."""
        return {"rows": [dict(r) for r in self.rows]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the rows on resume."""
        self.rows = [dict(r) for r in state_dict.get("rows") or []]

    def _subset(self, trainer: L.Trainer) -> list[Any]:
        datamodule = trainer.datamodule
        if datamodule is None or not hasattr(datamodule, "split"):
            raise ConfigError("train.track_irreps needs the run's data module (irrepscope train)")
        return tracking_batches(datamodule.dataset, datamodule.split.val, self.molecules,
                                self.seed)

    def _record(self, trainer: L.Trainer, pl_module: L.LightningModule, epochs_trained: int
                ) -> None:
        if not trainer.is_global_zero:
            return
        if self._batches is None:
            self._batches = self._subset(trainer)
        start = time.perf_counter()
        model = pl_module.model
        training = model.training
        model.eval()
        try:
            rows = usage_rows(model, self._batches, seed=self.seed,
                              ablation_batches=ABLATION_BATCHES)
        finally:
            model.train(training)
        seconds = time.perf_counter() - start
        count = sum(int(b.num_graphs) for b in self._batches)
        ablated = sum(int(b.num_graphs) for b in self._batches[:ABLATION_BATCHES])
        self.rows = [r for r in self.rows if r["epochs_trained"] < epochs_trained]
        self.rows += [{"epochs_trained": epochs_trained, **row, "molecules": count,
                       "ablation_molecules": ablated, "seconds": seconds} for row in rows]

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The initial weights' row (a fresh run only; a resumed one has it in its record)."""
        if trainer.current_epoch == 0 and not self.rows:
            with torch.no_grad():
                self._record(trainer, pl_module, 0)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """After epoch k (0-based) of fitting: record when k + 1 is a multiple of ``every`` or
        the last epoch."""
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        done = trainer.current_epoch + 1
        if done % self.every == 0 or done == trainer.max_epochs:
            self._record(trainer, pl_module, done)


def tracking_batches(dataset: Any, val: Any, molecules: int, seed: int) -> list[Any]:
    """The fixed validation batches a run is tracked on: ``molecules`` of the validation
    indices ``val`` drawn with ``seed``, in index order, collated once (CPU)."""
    from torch_geometric.data import Batch

    val = np.asarray(val, dtype=np.int64)
    if val.size == 0:
        raise ConfigError("train.track_irreps: the split has no validation molecules to "
                          "measure on; set data.fractions with a validation share")
    pick = np.random.default_rng(seed).permutation(val)[:molecules]
    graphs = [dataset[int(i)] for i in np.sort(pick)]
    return [Batch.from_data_list(graphs[k:k + BATCH_SIZE])
            for k in range(0, len(graphs), BATCH_SIZE)]


def tracker_for(config: Any) -> list[L.Callback]:
    """``[IrrepTracker]`` when ``config.train.track_irreps`` is set, else ``[]``."""
    t = config.train
    if t.track_irreps is None:
        return []
    return [IrrepTracker(t.track_irreps, t.track_irreps_molecules, config.seed)]
