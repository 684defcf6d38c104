"""Molecules above 127 atoms: bond indices stored wide enough, through cache, info, model, batch;
thousands of atoms through the real geometry step and predict in memory linear in the atoms."""

from __future__ import annotations

import json
import math
import tracemalloc

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.io import write
from qm9_files import WATER
from torch_geometric.data import Batch

from irrepscope.bench.geometry import water_cluster
from irrepscope.cli import main
from irrepscope.data import cache, load_dataset
from irrepscope.data.dataset import MoleculeGraphs
from irrepscope.data.graphs import bond_edges
from irrepscope.data.process import local_index_dtype, pack_local_edges
from irrepscope.model import ModelConfig, build_model

BOUNDARIES = [127, 128, 129, 255, 256, 32767, 32768, 32769, 40000]


def _chain_edges(n: int) -> np.ndarray:
    """int64 [2, 2(n-1)] local edges of an n-atom chain, both directions."""
    i = np.arange(n - 1)
    return np.stack([np.concatenate([i, i + 1]), np.concatenate([i + 1, i])])


@pytest.mark.parametrize(("atoms", "dtype"), [(1, np.int8), (128, np.int8), (129, np.int16),
                                              (32768, np.int16), (32769, np.int32),
                                              (2**31, np.int32), (2**31 + 1, np.int64)])
def test_index_dtype_holds_every_local_index(atoms, dtype):
    assert local_index_dtype(atoms) == np.dtype(dtype)


@pytest.mark.parametrize("n", BOUNDARIES)
def test_chain_edges_round_trip_through_the_cache(n, tmp_path):
    """A 3-atom molecule, an n-atom chain, a 3-atom molecule: cached, loaded, edges exact."""
    counts = np.array([3, n, 3])
    edges = [_chain_edges(c) for c in counts]
    local = np.concatenate(edges, axis=1)
    processed = {
        "z": np.full(counts.sum(), 6, np.uint8), "pos": np.zeros((counts.sum(), 3), np.float32),
        "atom_ptr": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        "y": np.zeros(3), "idx": np.arange(3), "smiles": ["", "", ""],
        "bond_local": pack_local_edges(local, counts),
        "bond_ptr": np.concatenate([[0], np.cumsum([e.shape[1] for e in edges])]).astype(np.int64),
        "radius_count": np.zeros(3, np.int64), "charges": np.zeros(0, np.float32),
        "dipole": np.zeros((0, 3)), "quadrupole": np.zeros((0, 5)),
        "meta": {"problems": [], "graph_problems": []},
    }
    path = tmp_path / "chain.pt"
    cache.save(path, "k", {}, processed)
    arrays = cache.load(path, "k", {})
    assert arrays is not None and arrays["bond_local"].dtype == local_index_dtype(n)
    graphs = MoleculeGraphs(arrays, "bonds", 6.0, np.ones(3, bool))
    for i, expected in enumerate(edges):
        assert torch.equal(graphs[i].edge_index, torch.from_numpy(expected)), i


def _zigzag_chain(n: int) -> Atoms:
    """n carbon atoms 1.54 Å apart at 112° (next-nearest 2.55 Å: not bonded)."""
    half = math.radians(112) / 2
    x = np.arange(n) * 1.54 * math.sin(half)
    y = np.where(np.arange(n) % 2, 1.54 * math.cos(half), 0.0)
    return Atoms("C" * n, positions=np.stack([x, y, np.zeros(n)], axis=1))


@pytest.fixture
def mixed_xyz(tmp_path):
    """Three waters, a 200-atom chain, two waters (extxyz, energies in eV)."""
    water = Atoms(symbols=WATER[1], positions=WATER[2])
    frames = [water.copy() for _ in range(3)] + [_zigzag_chain(200)] + \
        [water.copy() for _ in range(2)]
    for i, atoms in enumerate(frames):
        atoms.info["energy"] = -10.0 - i
    path = tmp_path / "mixed.extxyz"
    write(path, frames, format="extxyz")
    return path


def test_200_atoms_through_data_info_model_and_batch(mixed_xyz, tmp_path, capsys):
    assert main(["data", "info", "--xyz", str(mixed_xyz), "--data-dir", str(tmp_path / "c"),
                 "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["molecules"] == 6 and info["skipped"] == 0
    assert info["atoms_per_molecule"]["max"] == 200
    assert info["edges_per_molecule"]["max"] == 2 * 199
    ds = load_dataset(source="xyz", xyz=mixed_xyz, data_dir=tmp_path / "c", progress=False)
    chain = ds[3]
    assert torch.equal(chain.edge_index, bond_edges(chain.z, chain.pos))
    assert int(chain.edge_index.min()) == 0 and int(chain.edge_index.max()) == 199

    torch.manual_seed(0)
    model = build_model(ModelConfig(orders=[0, 1], hidden=4, num_layers=1, sh_backend="torch"),
                        dtype=torch.float64)
    graphs = [ds[i] for i in range(len(ds))]
    for g in graphs:
        g.pos = g.pos.double()
    with torch.no_grad():
        alone = torch.cat([model(g) for g in graphs])
        batched = model(Batch.from_data_list(graphs))
    assert torch.isfinite(batched).all()
    torch.testing.assert_close(batched, alone, rtol=1e-12, atol=1e-10)
    waters = [0, 1, 2, 4, 5]
    torch.testing.assert_close(batched[waters], alone[0].expand(5), rtol=1e-12, atol=1e-10)



def _traced_peak(step) -> tuple[object, int]:
    """(what ``step()`` returns, the peak of memory traced by tracemalloc while it ran)."""
    tracemalloc.start()
    try:
        return step(), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_thousands_of_atoms_through_data_info_in_linear_memory(tmp_path, capsys):
    """The real geometry step (validation, bonds, radius count, cache) on water clusters of
    1,500 and 6,000 atoms: memory grows like the atoms, not like their pairs (the all-pairs
    step held 24 N² bytes: 864 MB at 6,000 atoms)."""
    peaks = {}
    for n in (1500, 6000):
        z, pos = water_cluster(n)
        atoms = Atoms(numbers=z, positions=pos)
        atoms.info["energy"] = -1.0
        path = tmp_path / f"water_{n}.extxyz"
        write(path, [atoms], format="extxyz")
        args = ["data", "info", "--xyz", str(path), "--data-dir", str(tmp_path / "c"), "--json"]
        status, peaks[n] = _traced_peak(lambda: main(args))  # noqa: B023
        info = json.loads(capsys.readouterr().out)
        assert status == 0 and info["molecules"] == 1 and info["skipped"] == 0
        assert info["edges_per_molecule"]["max"] == 4 * (n // 3)  # two O-H bonds per water
    assert peaks[6000] < 8 * peaks[1500], peaks  # 4 times the atoms: linear 4, all pairs 16
    assert peaks[6000] < 100 * 2**20, peaks
