"""load_dataset: PyG items, batching, and every kind of bad molecule (error or counted skip)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qm9_files import AMMONIA, METHANE, WATER, basic_rows, row, write_part
from torch_geometric.loader import DataLoader

from irrepscope.data import MoleculeGraphs, load_dataset
from irrepscope.data.graphs import radius_edges
from irrepscope.data.qm9 import HARTREE_TO_EV
from irrepscope.errors import DataError


def _load(qm9_dir, tmp_path, **kwargs) -> MoleculeGraphs:
    return load_dataset(data_dir=tmp_path / "cache", qm9_dir=qm9_dir, progress=False, **kwargs)


def test_items_follow_the_pyg_contract(qm9_dir, tmp_path):
    ds = _load(qm9_dir, tmp_path)
    assert len(ds) == 3 and ds.smiles == ["C", "N", "O"] and list(ds.idx) == [1, 2, 3]
    d = ds[0]
    assert d.z.dtype == torch.int64 and d.z.tolist() == [6, 1, 1, 1, 1]
    assert d.pos.dtype == torch.float32 and d.pos.shape == (5, 3)
    assert d.edge_index.dtype == torch.int64 and d.edge_index.shape == (2, 8)
    assert sorted(map(tuple, d.edge_index.t().tolist())) == sorted(
        [(0, k) for k in range(1, 5)] + [(k, 0) for k in range(1, 5)])
    assert d.y.dtype == torch.float32 and d.y.shape == (1,)
    assert d.y.item() == pytest.approx((-40.47893 + 37.846772 + 4 * 0.500273) * HARTREE_TO_EV,
                                       rel=1e-6)
    assert d.smiles == "C" and d.idx == 1
    assert ds[-1].idx == 3 and list(ds.num_edges) == [8, 6, 4]
    with pytest.raises(IndexError):
        ds[3]


def test_radius_graph_items_and_batching(qm9_dir, tmp_path):
    ds = _load(qm9_dir, tmp_path, graph="radius", cutoff=1.2)
    for i in range(len(ds)):
        d = ds[i]
        assert torch.equal(d.edge_index, radius_edges(d.pos, 1.2))
        assert d.edge_index.shape[1] == ds.num_edges[i]
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch.num_graphs == 3 and batch.ptr.tolist() == [0, 5, 9, 12]
    assert batch.y.shape == (3,) and batch.smiles == ["C", "N", "O"]
    assert batch.idx.tolist() == [1, 2, 3]
    assert int(batch.edge_index.max()) < 12


BAD_CASES = {
    "unknown element": (row(4, "C", ["C", "Q"], [[0, 0, 0], [1.1, 0, 0]], -40.0),
                        "unknown element 'Q'"),
    "nan coordinate": (row(4, "O", WATER[1], [[0, 0, 0], [float("nan"), 0, 0], [0, 1, 0]],
                           WATER[3]), "coordinates are NaN or infinite"),
    "inf coordinate": (row(4, "O", WATER[1], [[0, 0, 0], [float("inf"), 0, 0], [0, 1, 0]],
                           WATER[3]), "coordinates are NaN or infinite"),
    "atoms too close": (row(4, "O", WATER[1], [[0, 0, 0], [0.05, 0, 0], [0, 0.96, 0]],
                            WATER[3]), "atoms 0 and 1 are 0.050 Å apart"),
    "no bonds": (row(4, "[H].[H]", ["H", "H"], [[0, 0, 0], [3.0, 0, 0]], -1.0),
                 "has no covalent bonds"),
    "bad smiles": (row(4, "C1CC", METHANE[1], METHANE[2], METHANE[3]),
                   "SMILES 'C1CC' cannot be parsed"),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_molecule_is_an_error_naming_it(case, tmp_path):
    folder = tmp_path / "qm9"
    folder.mkdir()
    bad_row, message = BAD_CASES[case]
    write_part(folder / "qm9_part1.csv", basic_rows() + [bad_row])
    with pytest.raises(DataError, match="molecule 4: " + message.replace(".", r"\.")):
        _load(folder, tmp_path)


def test_skip_invalid_counts_and_records(tmp_path, capsys):
    folder = tmp_path / "qm9"
    folder.mkdir()
    rows = basic_rows() + [dict(BAD_CASES[c][0], Index=10 + k)
                           for k, c in enumerate(BAD_CASES)]
    write_part(folder / "qm9_part1.csv", rows)
    ds = _load(folder, tmp_path, skip_invalid=True)
    assert list(ds.idx) == [1, 2, 3]
    err = capsys.readouterr().err
    assert f"skipped {len(BAD_CASES)} invalid molecule(s)" in err
    skipped = {p["index"]: p["problem"] for p in ds.metadata["skipped"]}
    assert sorted(skipped) == list(range(10, 10 + len(BAD_CASES)))
    assert "no covalent bonds" in skipped[14]
    # the cache records them too, and a second load skips them the same way
    again = _load(folder, tmp_path, skip_invalid=True)
    assert list(again.idx) == [1, 2, 3] and len(again.metadata["problems"]) == 5


def test_no_edges_depends_on_the_graph_kind(qm9_dir, tmp_path):
    with pytest.raises(DataError, match="molecule 1: has no two atoms closer than the cutoff"):
        _load(qm9_dir, tmp_path, graph="radius", cutoff=0.5)
    assert len(_load(qm9_dir, tmp_path, graph="bonds", cutoff=0.5)) == 3


def test_empty_and_bad_arguments(tmp_path):
    folder = tmp_path / "qm9"
    folder.mkdir()
    write_part(folder / "qm9_part1.csv", [row(1, "C1CC", *METHANE[1:])])
    with pytest.raises(DataError, match="no valid molecules"):
        _load(folder, tmp_path, skip_invalid=True)
    with pytest.raises(DataError, match="unknown graph kind"):
        _load(folder, tmp_path, graph="knn")
    with pytest.raises(DataError, match="cutoff"):
        _load(folder, tmp_path, cutoff=0.0)
    with pytest.raises(DataError, match="unknown data source"):
        _load(folder, tmp_path, source="zinc")


def test_real_qm9_slice_loads_and_batches(qm9_slice, tmp_path):
    ds = _load(qm9_slice, tmp_path)
    assert len(ds) == 1800
    assert np.all(ds.num_edges > 0) and np.all(ds.num_edges % 2 == 0)
    batch = next(iter(DataLoader(ds, batch_size=64, shuffle=False)))
    src, dst = batch.edge_index
    assert torch.equal(batch.batch[src], batch.batch[dst])  # edges stay inside molecules
    assert AMMONIA[0] in ds.smiles
