"""Features files that are not what they claim (0 bytes, not a zip, truncated, 0 molecules): one
line each; constant features: variance_share 0 with the reason in the report's notes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from irrepscope.analysis.utilization import variance_share
from irrepscope.cli import main


def _layer_file(path: Path, features: np.ndarray, **extra) -> Path:
    np.savez(path, layers=np.array(["last"]), **{"features:last": features,
                                                 "irreps:last": np.array("1x0e+1x1o")}, **extra)
    return path


def _zero_molecules(path: Path) -> None:
    _layer_file(path, np.zeros((0, 4)))


def _zero_atoms(path: Path) -> None:
    _layer_file(path, np.zeros((0, 4)), molecule=np.zeros(0, np.int64))


def _truncated(path: Path) -> None:
    _layer_file(path, np.ones((5, 4)))
    path.write_bytes(path.read_bytes()[:300])


BAD = {
    "empty": (lambda p: p.write_bytes(b""), "not a features file (empty: 0 bytes)"),
    "not_zip": (lambda p: p.write_text("molecule,energy\n"),
                "not a features file (it does not start like a zip archive"),
    "truncated": (_truncated, "not a readable .npz file, truncated or damaged (BadZipFile"),
    "zero_molecules": (_zero_molecules, "no molecules (layer 'last' has 0 rows)"),
    "zero_atoms": (_zero_atoms, "no molecules (layer 'last' has 0 rows)"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_features_file_is_one_line(case, tmp_path, capsys):
    make, expected = BAD[case]
    path = tmp_path / "features.npz"
    make(path)
    assert main(["analyze", "--features", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"irrepscope: error: {path}: {expected}"), err


def test_constant_features_have_zero_variance_share_and_say_why(tmp_path, capsys):
    path = _layer_file(tmp_path / "constant.npz", np.ones((40, 4)))
    assert main(["analyze", "--features", str(path), "--out", str(tmp_path / "out")]) == 0
    with open(tmp_path / "out" / "utilization.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["variance_share"]) for r in rows] == [0.0, 0.0]
    notes = (tmp_path / "out" / "report.md").read_text()
    assert "the features are the same for every molecule, so no l carries any variance: " \
           "variance_share is 0 for every l there" in notes
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["table"][0][
        "variance_share"] == 0.0
    assert variance_share({0: np.ones((3, 1)), 1: np.zeros((3, 3))}) == {0: 0.0, 1: 0.0}
