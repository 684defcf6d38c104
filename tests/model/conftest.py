"""Real QM9 molecules (qm9pack's CSV or $IRREPSCOPE_QM9_DIR's) as float64 graphs, bond edges."""

from __future__ import annotations

import ast
import csv
from collections.abc import Callable, Sequence
from types import SimpleNamespace

import pytest
import torch
from torch_geometric.data import Batch, Data

from irrepscope.data.qm9 import qm9_source_dir, qm9pack_dir

# QM9 indices: HCN (linear), oxirane, O=COCC#N, CN1C=NC=C1C, N=CN(C=O)C=O
QM9_INDICES = (5, 17, 500, 1000, 2500)
ATOMIC_NUMBERS = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}
COVALENT_RADII = {1: 0.31, 6: 0.76, 7: 0.71, 8: 0.66, 9: 0.57}  # Å


def radius_edges(pos: torch.Tensor, radius: float) -> torch.Tensor:
    """All ordered pairs i != j closer than ``radius`` (Å): edge_index [2, E]."""
    dist = torch.cdist(pos, pos)
    mask = (dist < radius) & ~torch.eye(pos.shape[0], dtype=torch.bool)
    return mask.nonzero().T.contiguous()


def bond_edges(z: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Bonds by covalent radii (d < r_i + r_j + 0.45 Å), both directions: edge_index [2, E]."""
    radii = torch.tensor([COVALENT_RADII[int(a)] for a in z], dtype=pos.dtype)
    dist = torch.cdist(pos, pos)
    mask = (dist < radii[:, None] + radii[None, :] + 0.45) & ~torch.eye(z.numel(), dtype=torch.bool)
    return mask.nonzero().T.contiguous()


def molecule(z: Sequence[int], pos: torch.Tensor | Sequence, idx: int = -1) -> Data:
    """A float64 PyG graph with bond edges."""
    z = torch.as_tensor(z, dtype=torch.long)
    pos = torch.as_tensor(pos, dtype=torch.float64).reshape(-1, 3)
    return Data(z=z, pos=pos, edge_index=bond_edges(z, pos), idx=idx)


def _read_qm9(indices: Sequence[int]) -> list[Data]:
    """QM9 rows from qm9pack's CSV; where qm9pack is not installed (a device machine), from the
    extract $IRREPSCOPE_QM9_DIR names (which other fixtures point at small slices otherwise)."""
    wanted, found = set(indices), {}
    with open((qm9pack_dir() or qm9_source_dir()) / "qm9_part1.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            index = int(row["Index"])
            if index in wanted:
                z = [ATOMIC_NUMBERS[e] for e in ast.literal_eval(row["Elements"])]
                found[index] = molecule(z, ast.literal_eval(row["XYZ_Ang"]), index)
            if index >= max(wanted):
                break
    assert sorted(found) == sorted(wanted), f"missing QM9 rows {wanted - set(found)}"
    return [found[i] for i in indices]


@pytest.fixture(scope="session")
def qm9_molecules() -> list[Data]:
    """Five real QM9 molecules (3 to 15 atoms, H/C/N/O), float64, bond edges."""
    return _read_qm9(QM9_INDICES)


@pytest.fixture(scope="session")
def make_batch() -> Callable[[Sequence[Data]], Batch]:
    """Batch.from_data_list, exposed as a fixture."""
    return lambda graphs: Batch.from_data_list(list(graphs))


@pytest.fixture(scope="session")
def make_radius_batch() -> Callable[[Sequence[Data]], Batch]:
    """A batch of copies of the graphs with 6 Å radius edges (every pair in small molecules)."""
    def build(graphs: Sequence[Data]) -> Batch:
        return Batch.from_data_list([Data(z=g.z, pos=g.pos, edge_index=radius_edges(g.pos, 6.0),
                                          idx=g.idx) for g in graphs])

    return build


@pytest.fixture(scope="session")
def graph_tools() -> SimpleNamespace:
    """The helpers above for tests: molecule(z, pos), radius_edges(pos, r), bond_edges(z, pos)."""
    return SimpleNamespace(molecule=molecule, radius_edges=radius_edges, bond_edges=bond_edges)


@pytest.fixture(autouse=True)
def _one_thread():
    """These graphs are tiny: intra-op threads only add contention on a shared 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
