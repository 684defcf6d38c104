"""Samplers (exact DDP sharding, per-epoch shuffles) and the split saved in the run directory."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from irrepscope.data.splits import load_split
from irrepscope.errors import RunDirError
from irrepscope.train.datamodule import EpochSampler, QM9DataModule


@pytest.mark.parametrize("num_items", [1, 7, 10, 33])
@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_eval_shards_cover_every_item_exactly_once(num_items: int, world_size: int) -> None:
    shards = [list(EpochSampler(num_items, shuffle=False, seed=1, rank=r, world_size=world_size,
                                pad=False)) for r in range(world_size)]
    assert sorted(i for shard in shards for i in shard) == list(range(num_items))
    assert [len(s) for s in shards] == [len(EpochSampler(num_items, False, 1, r, world_size,
                                                         pad=False)) for r in range(world_size)]


@pytest.mark.parametrize(("num_items", "world_size"), [(7, 2), (10, 3), (2, 3), (12, 4)])
def test_train_shards_are_equal_and_cover_everything(num_items: int, world_size: int) -> None:
    shards = [list(EpochSampler(num_items, shuffle=True, seed=3, rank=r, world_size=world_size))
              for r in range(world_size)]
    lengths = {len(s) for s in shards}
    assert lengths == {-(-num_items // world_size)}  # every rank takes the same number of steps
    counts = Counter(i for s in shards for i in s)
    assert set(counts) == set(range(num_items))
    assert sum(counts.values()) - num_items < world_size  # padding only, at most world_size - 1


def test_shuffle_depends_on_seed_and_epoch_only() -> None:
    a, b = EpochSampler(50, True, seed=9), EpochSampler(50, True, seed=9)
    first = list(a)
    torch.manual_seed(123)  # the global RNG plays no part
    assert list(b) == first and sorted(first) == list(range(50))
    a.set_epoch(1)
    assert list(a) != first
    b.set_epoch(1)
    assert list(a) == list(b)
    assert list(EpochSampler(50, True, seed=10)) != first


def test_split_is_made_once_and_reused(tiny_config, tmp_path: Path) -> None:
    config = tiny_config()
    module = QM9DataModule(config, tmp_path, progress=False)
    module.prepare_data()
    saved = load_split(tmp_path / "split.npz")
    assert (len(saved.train), len(saved.val), len(saved.test)) == (52, 6, 6)
    assert saved.seed == config.seed and saved.subset == 64
    all_items = np.concatenate([saved.train, saved.val, saved.test])
    assert len(np.unique(all_items)) == 64
    # a later step (or a resume) reads the file rather than drawing a new split
    module.setup("fit")
    assert np.array_equal(module.split.test, saved.test)
    loader = module.test_dataloader()
    batch = next(iter(loader))
    assert batch.num_graphs == 6 and batch.y.shape == (6,)
    assert [int(i) for i in batch.idx] == [int(module.dataset[int(i)].idx) for i in saved.test]
    # the same config elsewhere gives the same split (one seed)
    other = QM9DataModule(config, tmp_path / "again", progress=False)
    other.prepare_data()
    assert np.array_equal(load_split(tmp_path / "again" / "split.npz").train, saved.train)


def test_split_of_another_config_is_refused(tiny_config, tmp_path: Path) -> None:
    QM9DataModule(tiny_config(), tmp_path, progress=False).prepare_data()
    module = QM9DataModule(tiny_config("data.subset=40"), tmp_path, progress=False)
    with pytest.raises(RunDirError, match="subset=64, but the config asks for .*subset=40"):
        module.prepare_data()


def test_missing_split_names_the_step(tiny_config, tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="split.npz is missing; it is written when training"):
        QM9DataModule(tiny_config(), tmp_path, progress=False).setup("test")
