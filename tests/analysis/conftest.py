"""Fixtures for the analysis tests: a tiny random model and synthetic molecules (no QM9)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from irrepscope.analysis import analyze
from irrepscope.analysis.embeddings import TrainedRun
from irrepscope.model import ModelConfig, build_model
from irrepscope.train.config import RunConfig

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


@pytest.fixture()
def fake_runs(monkeypatch, tmp_path, tiny_model, molecule_factory):
    """Two run dirs whose open_run returns the tiny model on 40 synthetic test molecules."""
    molecules = molecule_factory(40, seed=5)
    config = RunConfig(seed=3, model=ModelConfig(orders=[0, 1, 2], hidden=4, num_layers=1))
    dirs = []
    for name in ("run_a", "run_b"):
        run_dir = tmp_path / name
        run_dir.mkdir()
        (run_dir / "metrics.csv").write_text("epoch,train_mse,train_mae,val_mse,val_mae\n"
                                             "0,3.0,1.2,3.5,1.3\n1,2.0,1.0,2.5,1.1\n")
        (run_dir / "test_metrics.json").write_text(json.dumps(
            {"test_mse": 2.25, "test_mae": 1.05, "parameters": 1234, "epochs_trained": 2}))
        (run_dir / "best.ckpt").write_text("placeholder: open_run is replaced in this test")
        dirs.append(run_dir)

    def fake_open_run(run_dir, checkpoint="best", progress=True):
        return TrainedRun(run_dir, tiny_model, config, np.arange(100, 140), molecules)

    monkeypatch.setattr(analyze, "open_run", fake_open_run)
    return dirs
