"""The k-d tree neighbour search of large molecules gives exactly the all-pairs results: the same
pairs, edges in the same order, the same closest pair, counts and bond environments."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from irrepscope.bench.geometry import water_cluster
from irrepscope.data import graphs
from irrepscope.data import process as processing
from irrepscope.data.graphs import (
    bond_adjacency,
    bond_edges,
    close_pairs,
    radius_adjacency,
    radius_edges,
    squared_distances,
)
from irrepscope.data.molecules import RawMolecules
from irrepscope.data.process import process
from irrepscope.data.qm9 import read_qm9


@pytest.fixture
def all_pairs(monkeypatch):
    """``all_pairs(n)``: molecules up to n atoms take the all-pairs path."""
    def dense_up_to(n: int) -> None:
        monkeypatch.setattr(graphs, "DENSE_MAX_ATOMS", n)
        monkeypatch.setattr(processing, "DENSE_MAX_ATOMS", n)
    return dense_up_to


def _crowded(rng: np.random.Generator, n: int) -> np.ndarray:
    """[n, 3] positions in a box, some pairs very close, some exactly on a grid (equal
    distances: ties for the closest pair)."""
    pos = rng.uniform(0, 0.9 * n ** (1 / 3), size=(n, 3))
    pos[: n // 4] = np.round(pos[: n // 4] * 2) / 2
    pos[n // 2] = pos[n // 2 + 1] + [0.03, 0.0, 0.0]
    return pos


@pytest.mark.parametrize("radius", [0.5, 1.5, 3.0])
def test_close_pairs_are_every_pair_within_the_radius(radius):
    pos = _crowded(np.random.default_rng(int(radius * 10)), 300)
    i, j, d2 = close_pairs(pos, radius)
    full = squared_distances(pos)
    within = np.argwhere(np.triu(full < radius * radius, k=1))
    assert set(map(tuple, within)) <= set(zip(i.tolist(), j.tolist(), strict=True))
    assert np.array_equal(d2, full[i, j])  # bit for bit
    assert (i < j).all() and np.all(np.diff(i * len(pos) + j) > 0)  # sorted by (i, j)


@pytest.mark.parametrize("kind", ["water", "crowded"])
def test_large_molecule_graphs_equal_the_all_pairs_graphs(kind, all_pairs):
    rng = np.random.default_rng(3)
    if kind == "water":
        z, pos = water_cluster(900)
    else:
        pos = _crowded(rng, 700)
        z = rng.choice([1, 6, 7, 8, 9, 16], size=len(pos))
    assert len(z) > graphs.DENSE_MAX_ATOMS
    sparse = bond_edges(z, pos), radius_edges(torch.from_numpy(pos), 3.0)
    all_pairs(10_000)
    dense = bond_edges(z, pos), radius_edges(torch.from_numpy(pos), 3.0)
    for a, b in zip(sparse, dense, strict=True):
        assert a.dtype == b.dtype == torch.int64 and torch.equal(a, b)
    assert sparse[0].shape[1] == int(bond_adjacency(z, pos).sum())
    assert sparse[1].shape[1] == int(radius_adjacency(pos, 3.0).sum())


def _same_processing(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for key in a:
        if key == "meta":
            drop = {"processing_seconds"}
            assert {k: v for k, v in a[key].items() if k not in drop} == \
                {k: v for k, v in b[key].items() if k not in drop}
        elif isinstance(a[key], np.ndarray):
            assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


def test_processing_qm9_and_large_molecules_is_the_same_either_way(qm9_slice, all_pairs):
    raw = read_qm9(qm9_slice)
    raw = raw.select(np.arange(len(raw)) % 5 == 0)  # 360 molecules of all three parts
    rng = np.random.default_rng(5)
    crowded = _crowded(rng, 600)  # two atoms 0.03 Å apart: invalid, named by its closest pair
    z_c = rng.choice([1, 6, 8], size=len(crowded))
    z_w, pos_w = water_cluster(1500)
    mixed = RawMolecules(np.concatenate([raw.z, z_c, z_w]),
                         np.concatenate([raw.pos, crowded, pos_w]),
                         [*raw.counts, len(z_c), len(z_w)], np.zeros(len(raw) + 2),
                         np.arange(len(raw) + 2), [*raw.smiles, "C", "O.O.O"])
    default = process(mixed, 6.0, progress=False)
    all_pairs(0)  # every molecule through the k-d tree
    sparse = process(mixed, 6.0, progress=False)
    all_pairs(10_000)  # every molecule through all pairs
    dense = process(mixed, 6.0, progress=False)
    _same_processing(default, dense)
    _same_processing(sparse, dense)
    problems = {p["index"]: p["problem"] for p in dense["meta"]["problems"]}
    assert problems[len(raw)].endswith("Å apart (closer than 0.1 Å)")
    assert len(dense["y"]) == len(raw) + 1, problems  # the water cluster is valid
    water = [d for d in dense["meta"]["bond_disagreements"] if d["index"] == len(raw) + 1]
    assert water[0]["geometry_bonds"] == 1000 and water[0]["smiles_bonds"] == 6
