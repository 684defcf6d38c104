"""Extended XYZ out: seeded QM9 samples written with their energies (eV) and SMILES; one-line
errors and nothing written on bad input (a run's split: tests/integration/test_cli_export.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from irrepscope.cli import main
from irrepscope.data import load_dataset
from irrepscope.data.export import export_molecules, select_positions
from irrepscope.data.xyz import read_atoms
from irrepscope.errors import DataError


def test_seeded_sample_is_sorted_and_repeatable() -> None:
    positions = np.arange(100, 200)
    a, b = select_positions(positions, 10, 3), select_positions(positions, 10, 3)
    assert np.array_equal(a, b) and np.all(np.diff(a) > 0) and set(a) <= set(positions)
    assert not np.array_equal(a, select_positions(positions, 10, 4))


def test_qm9_sample_export(qm9_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "sample.xyz"
    assert main(["data", "export", "--qm9-dir", str(qm9_dir), "--data-dir",
                 str(tmp_path / "cache"), "--molecules", "2", "--seed", "1", "--energy-key", "U0",
                 "--out", str(out)]) == 0
    frames = read_atoms(out)
    dataset = load_dataset(qm9_dir=qm9_dir, data_dir=tmp_path / "cache", progress=False)
    chosen = select_positions(np.arange(len(dataset)), 2, 1)
    assert [a.info["U0"] for a in frames] == pytest.approx(dataset.y.numpy()[chosen], abs=1e-6)
    assert [a.info["smiles"] for a in frames] == [dataset.smiles[i] for i in chosen]


@pytest.mark.parametrize("args, message", [
    (["--molecules", "0"], "between 1 and"),
    (["--split", "val"], "give --run RUN"),
    (["--energy-key", "smiles"], "cannot hold the energy"),
])
def test_bad_input_one_line_nothing_written(qm9_dir: Path, tmp_path: Path, capsys, args,
                                            message) -> None:
    out = tmp_path / "out" / "x.xyz"
    code = main(["data", "export", "--qm9-dir", str(qm9_dir), "--data-dir",
                 str(tmp_path / "cache"), "--out", str(out), *args])
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert code == 2 and len(errors) == 1 and message in errors[0]
    assert not out.parent.exists()


def test_out_is_a_folder(qm9_dir: Path, tmp_path: Path) -> None:
    dataset = load_dataset(qm9_dir=qm9_dir, data_dir=tmp_path / "cache", progress=False)
    with pytest.raises(DataError, match="is a folder"):
        export_molecules(dataset, [0, 1], tmp_path)


