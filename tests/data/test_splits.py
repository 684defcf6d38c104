"""Seeded splits: deterministic, disjoint, covering, subset, reloaded identically, errors."""

from __future__ import annotations

import numpy as np
import pytest

from irrepscope.data.splits import DEFAULT_SEED, load_split, make_split, save_split
from irrepscope.errors import DataError


def test_split_is_deterministic_disjoint_and_covering():
    a, b = make_split(1000), make_split(1000, seed=DEFAULT_SEED)
    for x, y in zip((a.train, a.val, a.test), (b.train, b.val, b.test), strict=True):
        assert np.array_equal(x, y) and x.dtype == np.int64
    assert (len(a.train), len(a.val), len(a.test)) == (800, 100, 100)
    joined = np.concatenate([a.train, a.val, a.test])
    assert np.array_equal(np.sort(joined), np.arange(1000))
    c = make_split(1000, seed=7)
    assert not np.array_equal(a.train, c.train)


def test_subset_takes_the_first_n_of_the_shuffled_order():
    full = make_split(500, seed=3)
    sub = make_split(500, seed=3, subset=50)
    order = np.random.default_rng(3).permutation(500)
    assert np.array_equal(np.concatenate([sub.train, sub.val, sub.test]), order[:50])
    assert np.array_equal(np.concatenate([full.train, full.val, full.test]), order)
    assert (len(sub.train), len(sub.val), len(sub.test)) == (40, 5, 5) and sub.subset == 50


def test_small_sets_keep_every_part_non_empty():
    s = make_split(3, seed=1)
    assert len(s.train) == len(s.val) == len(s.test) == 1


def test_save_and_load_round_trip(tmp_path):
    for subset in (None, 77):
        split = make_split(300, seed=11, fractions=(0.7, 0.2, 0.1), subset=subset)
        path = save_split(split, tmp_path / "split.npz")
        back = load_split(path)
        assert back.seed == 11 and back.fractions == (0.7, 0.2, 0.1) and back.subset == subset
        for name in ("train", "val", "test"):
            assert np.array_equal(getattr(back, name), getattr(split, name))
    # no '.npz' appended to other names (atomic writes go through temporary names)
    assert save_split(split, tmp_path / "x.tmp").name == "x.tmp" and (tmp_path / "x.tmp").exists()


@pytest.mark.parametrize("kwargs, message", [
    (dict(subset=0), "empty subset"),
    (dict(subset=-5), "empty subset"),
    (dict(subset=101), "data set of 100"),
    (dict(fractions=(0.5, 0.5, 0.0)), "three positive"),
    (dict(fractions=(0.5, 0.2, 0.2)), "summing to 1"),
])
def test_bad_split_requests(kwargs, message):
    with pytest.raises(DataError, match=message):
        make_split(100, **kwargs)


def test_too_few_items_and_bad_file(tmp_path):
    with pytest.raises(DataError, match="cannot be split"):
        make_split(2)
    with pytest.raises(DataError, match="cannot be split"):
        make_split(0)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable split"):
        load_split(tmp_path / "bad.npz")
