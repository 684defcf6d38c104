"""LightningDataModule over ``irrepscope.data``: the run's saved split, exact sharding for DDP.

The split is made once (``prepare_data``, global rank 0) and saved to ``run_dir/split.npz``;
every rank and every later step (resume, analysis) reloads it from there. Samplers are
deterministic functions of (seed, epoch, rank, world size) and consume no global RNG, so a run
resumed from ``last.ckpt`` sees exactly the batches the uninterrupted run would have seen.
Training shards are padded to equal length (as ``DistributedSampler`` does: every rank must take
the same number of steps); evaluation shards are disjoint and unpadded, so each molecule is
evaluated exactly once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import Sampler, Subset
from torch_geometric.loader import DataLoader

from irrepscope.data import load_dataset
from irrepscope.data.splits import Split, load_split, make_split, save_split
from irrepscope.errors import RunDirError
from irrepscope.train.config import RunConfig

SPLIT_FILE = "split.npz"
_DATASET_CACHE: dict[str, Any] = {}


class EpochSampler(Sampler[int]):
    """Indices of one rank's shard; shuffled per epoch from ``seed`` when ``shuffle``.

    ``pad=True`` repeats leading indices so that every rank gets ``ceil(n / world_size)``
    (training); ``pad=False`` gives rank r the positions ``r, r + world_size, ...`` (evaluation,
    no duplicates).
    """

    def __init__(self, num_items: int, shuffle: bool, seed: int, rank: int = 0,
                 world_size: int = 1, pad: bool = True) -> None:
        self.num_items, self.shuffle, self.seed = num_items, shuffle, seed
        self.rank, self.world_size, self.pad = rank, world_size, pad
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = epoch

    def _order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.num_items))
        generator = torch.Generator().manual_seed(self.seed + 1_000_003 * self.epoch)
        return torch.randperm(self.num_items, generator=generator).tolist()

    def __iter__(self) -> Iterator[int]:
        order = self._order()
        if self.pad and order:
            total = -(-self.num_items // self.world_size) * self.world_size
            order = (order * (total // len(order) + 1))[:total]
        return iter(order[self.rank::self.world_size])

    def __len__(self) -> int:
        if self.pad:
            return -(-self.num_items // self.world_size)
        return len(range(self.rank, self.num_items, self.world_size))


def cached_dataset(config: RunConfig, progress: bool = True) -> Any:
    """``irrepscope.data.load_dataset`` for ``config.data``, memoised (one data set) per process."""
    kwargs = {**config.data.load_kwargs(), "targets": tuple(config.train.targets)}
    env = [os.environ.get(k) for k in ("IRREPSCOPE_QM9_DIR", "IRREPSCOPE_DATA_DIR")]
    key = repr((sorted(kwargs.items()), env))
    if key not in _DATASET_CACHE:
        _DATASET_CACHE.clear()
        _DATASET_CACHE[key] = load_dataset(**kwargs, progress=progress)
    return _DATASET_CACHE[key]


def split_for(config: RunConfig, num_items: int) -> Split:
    """The split a config asks for over a data set of ``num_items`` molecules."""
    d = config.data
    return make_split(num_items, seed=config.split_seed, fractions=tuple(d.fractions),
                      subset=d.subset)


def check_split(split: Split, config: RunConfig, path: Path, num_items: int) -> Split:
    """Raise ``RunDirError`` if a saved split does not belong to this config and data set."""
    d = config.data
    same = (int(split.seed) == config.split_seed
            and np.allclose(np.asarray(split.fractions, dtype=float), d.fractions)
            and (split.subset is None) == (d.subset is None)
            and (d.subset is None or int(split.subset) == d.subset))
    if not same:
        raise RunDirError(
            f"{path} was made with seed={split.seed}, fractions={list(split.fractions)}, "
            f"subset={split.subset}, but the config asks for seed={config.split_seed}, "
            f"fractions={d.fractions}, subset={d.subset}; use a new run directory")
    top = max((int(a.max()) for a in (split.train, split.val, split.test) if len(a)), default=-1)
    if top >= num_items:
        raise RunDirError(f"{path} indexes molecule {top}, but the data set has only {num_items};"
                          f" the data changed since the split was made")
    return split


class QM9DataModule(L.LightningDataModule):
    """Train/val/test loaders of PyG batches for a run directory (split in ``split.npz``)."""

    def __init__(self, config: RunConfig, run_dir: str | Path, progress: bool = True) -> None:
        super().__init__()
        self.config, self.run_dir, self.progress = config, Path(run_dir), progress
        self.prepare_data_per_node = False  # the run directory is shared by all nodes
        self.dataset: Any = None
        self.split: Split | None = None

    @property
    def split_path(self) -> Path:
        """``run_dir/split.npz``."""
        return self.run_dir / SPLIT_FILE

    def prepare_data(self) -> None:
        """(Global rank 0) make and save the split unless the run directory has it already."""
        dataset = cached_dataset(self.config, self.progress)
        if self.split_path.exists():
            check_split(load_split(self.split_path), self.config, self.split_path, len(dataset))
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        save_split(split_for(self.config, len(dataset)), self.split_path)

    def setup(self, stage: str | None = None) -> None:
        """(Every rank) load the data set and the saved split."""
        if self.dataset is not None:
            return
        self.dataset = cached_dataset(self.config, self.progress and self._rank() == 0)
        if not self.split_path.exists():
            raise RunDirError(f"{self.split_path} is missing; it is written when training starts "
                              f"(irrepscope train)")
        self.split = check_split(load_split(self.split_path), self.config, self.split_path,
                                 len(self.dataset))

    def _rank(self) -> int:
        return self.trainer.global_rank if self.trainer is not None else 0

    def _world(self) -> int:
        return self.trainer.world_size if self.trainer is not None else 1

    def _loader(self, indices: Sequence[int], train: bool) -> DataLoader:
        t = self.config.train
        sampler = EpochSampler(len(indices), shuffle=train, seed=self.config.seed,
                               rank=self._rank(), world_size=self._world(), pad=train)
        batch = t.batch_size if train else (t.eval_batch_size or t.batch_size)
        workers = self.config.data.num_workers
        return DataLoader(Subset(self.dataset, np.asarray(indices).tolist()), batch_size=batch,
                          sampler=sampler, num_workers=workers,
                          persistent_workers=workers > 0,
                          generator=torch.Generator().manual_seed(self.config.seed))

    def train_dataloader(self) -> DataLoader:
        """Shuffled (per epoch, from the seed), padded shard of the training split."""
        return self._loader(self._get_split().train, train=True)

    def val_dataloader(self) -> DataLoader:
        """Disjoint, unpadded shard of the validation split."""
        return self._loader(self._get_split().val, train=False)

    def test_dataloader(self) -> DataLoader:
        """Disjoint, unpadded shard of the test split."""
        return self._loader(self._get_split().test, train=False)

    def _get_split(self) -> Split:
        if self.split is None:
            self.setup()
        assert self.split is not None
        return self.split
