"""Fixtures for the analysis tests: a tiny random model and synthetic molecules (no QM9)."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data

from irrepscope.model import ModelConfig, build_model

SMILES = ["C", "CC", "CCO", "CC(C)(C)O", "c1ccccc1", "C1CC1", "CC#N", "OC1CC2CC1C2"]


def make_molecules(count: int, seed: int = 0) -> list[Data]:
    """Random small molecules (3-7 atoms of H/C/N/O, all pairs within 6 Å bonded both ways)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(count):
        n = int(torch.randint(3, 8, (1,), generator=g))
        z = torch.tensor([1, 6, 7, 8])[torch.randint(0, 4, (n,), generator=g)]
        pos = torch.randn(n, 3, generator=g) * 1.3
        src, dst = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        keep = src != dst
        edge_index = torch.stack([src[keep], dst[keep]])
        y = torch.tensor([-10.0 * n + float(torch.randn(1, generator=g))])
        out.append(Data(z=z, pos=pos, edge_index=edge_index, y=y, smiles=SMILES[i % len(SMILES)],
                        idx=i))
    return out


@pytest.fixture(scope="module")
def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig(orders=[0, 1, 2], hidden=4, num_layers=1)).eval()


@pytest.fixture(scope="session")
def molecule_factory():
    """make_molecules itself, for tests that need their own count or seed."""
    return make_molecules


@pytest.fixture(scope="module")
def molecules() -> list[Data]:
    return make_molecules(24)
