"""`irrepscope data export --run`: a run's split written with its energies (eV) and read back
identically by irrepscope's own reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from irrepscope.cli import main
from irrepscope.data import load_dataset
from irrepscope.data.xyz import read_atoms
from irrepscope.train.run import load_run_dataset, load_run_split


def test_run_split_round_trip(tiny_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "test.xyz"
    assert main(["data", "export", "--run", str(tiny_run), "--split", "test",
                 "--out", str(out)]) == 0
    assert "REF_energy" in capsys.readouterr().out
    dataset, split = load_run_dataset(tiny_run, progress=False), load_run_split(tiny_run)
    frames = read_atoms(out)
    assert len(frames) == len(split.test)
    for atoms, position in zip(frames, split.test, strict=True):
        graph = dataset[int(position)]
        assert np.array_equal(atoms.get_atomic_numbers(), graph.z.numpy())
        assert np.allclose(atoms.get_positions(), graph.pos.double().numpy(), atol=1e-7)
        assert atoms.info["REF_energy"] == pytest.approx(float(graph.y), abs=1e-6)
        assert atoms.info["smiles"] == graph.smiles
        assert not atoms.pbc.any()
    again = load_dataset(source="xyz", xyz=out, energy_key="REF_energy",
                         data_dir=tmp_path / "cache", progress=False)
    assert np.allclose(again.y.numpy(), dataset.y.numpy()[split.test])
