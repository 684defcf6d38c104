"""QM9 CSV reading: atomization energies, the paper's label statistics, file-level errors."""

from __future__ import annotations

import numpy as np
import pytest
from qm9_files import basic_rows, row, write_part

from irrepscope.data.qm9 import (
    ATOM_REF_HARTREE,
    HARTREE_TO_EV,
    LABEL_MEAN_EV,
    LABEL_STD_EV,
    QM9_NUM_MOLECULES,
    atomization_energy_ev,
    qm9_source_files,
    read_qm9,
)
from irrepscope.errors import DataError


def test_atomization_energy_formula_on_small_molecules(qm9_dir):
    raw = read_qm9(qm9_dir)
    assert list(raw.idx) == [1, 2, 3] and list(raw.counts) == [5, 4, 3]
    # methane: U0 - (C + 4 H), by hand
    expected = (-40.47893 - (-37.846772 + 4 * -0.500273)) * 27.211386246
    assert raw.y[0] == pytest.approx(expected, abs=1e-9)
    assert raw.y[2] == pytest.approx((-76.404702 - (-75.064579 + 2 * -0.500273)) * HARTREE_TO_EV)
    assert list(raw.z[:5]) == [6, 1, 1, 1, 1]
    assert raw.pos.shape == (12, 3) and raw.pos[0, 1] == pytest.approx(1.0858041578)


def test_atomization_energy_vectorised_matches_loop():
    rng = np.random.default_rng(3)
    counts = rng.integers(1, 8, size=20)
    z = rng.choice([1, 6, 7, 8, 9], size=counts.sum())
    u0 = rng.normal(-300, 50, size=20)
    got = atomization_energy_ev(z, counts, u0)
    ptr = np.concatenate([[0], np.cumsum(counts)])
    for m in range(20):
        refs = sum(ATOM_REF_HARTREE[int(a)] for a in z[ptr[m]:ptr[m + 1]])
        assert got[m] == pytest.approx((u0[m] - refs) * HARTREE_TO_EV, rel=1e-12)


def test_label_statistics_of_whole_qm9_match_paper():
    raw = read_qm9()
    assert len(raw) == QM9_NUM_MOLECULES and not raw.problems
    assert abs(raw.y.mean() - LABEL_MEAN_EV) < 5e-4
    assert abs(raw.y.std(ddof=1) - LABEL_STD_EV) < 1e-4


def test_missing_folder_and_parts(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        qm9_source_files(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no qm9_part"):
        qm9_source_files(tmp_path / "empty")
    gap = tmp_path / "gap"
    gap.mkdir()
    write_part(gap / "qm9_part1.csv", basic_rows())
    write_part(gap / "qm9_part3.csv", basic_rows())
    with pytest.raises(DataError, match="qm9_part2.csv"):
        qm9_source_files(gap)


def test_env_var_selects_source(qm9_dir, monkeypatch):
    monkeypatch.setenv("IRREPSCOPE_QM9_DIR", str(qm9_dir))
    assert qm9_source_files() == [qm9_dir / "qm9_part1.csv"]


@pytest.mark.parametrize("cut", ["mid_field", "after_field"])
def test_truncated_csv_is_an_error(qm9_dir, cut):
    path = qm9_dir / "qm9_part1.csv"
    text = path.read_text()
    last = text.rstrip("\n").rsplit("\n", 1)[1]
    if cut == "mid_field":  # inside the quoted coordinate list of the last row
        keep = text.rindex(last) + last.index("[[") + 10
    else:  # right after the SMILES field of the last row
        keep = text.rindex(last) + last.index(",O,") + 2
    path.write_text(text[:keep])
    with pytest.raises(DataError, match="truncated"):
        read_qm9(qm9_dir)


def test_header_only_and_empty_files_are_errors(qm9_dir):
    path = qm9_dir / "qm9_part1.csv"
    write_part(path, [])
    with pytest.raises(DataError, match="holds no molecules"):
        read_qm9(qm9_dir)
    path.write_text("")
    with pytest.raises(DataError, match="cannot be read"):
        read_qm9(qm9_dir)


def test_missing_column_is_an_error(qm9_dir):
    path = qm9_dir / "qm9_part1.csv"
    import pandas as pd

    pd.read_csv(path).drop(columns=["XYZ_Ang"]).to_csv(path, index=False)
    with pytest.raises(DataError, match="XYZ_Ang"):
        read_qm9(qm9_dir)


def test_per_molecule_problems_are_collected(qm9_dir):
    rows = basic_rows()
    rows.append(row(4, "C", ["C", "H", "H", "H", "Xx"], [[0, 0, 0]] * 5, -40.0))
    rows.append(row(5, "C", ["C", "H", "H", "H"], [[0, 0, 0]] * 5, -40.0))
    rows.append(row(6, "C", ["C", "H", "H"], [[0, 0, 0], [1, "abc", 0], [0, 1, 0]], -40.0))
    rows.append(row(7, "O", ["O", "H", "H"], [[0, 0, 0], [1, 0, 0], [0, 1, 0]], float("nan")))
    write_part(qm9_dir / "qm9_part1.csv", rows)
    raw = read_qm9(qm9_dir)
    assert list(raw.idx) == [1, 2, 3]
    problems = {p.index: p.problem for p in raw.problems}
    assert "unknown element 'Xx'" in problems[4]
    assert "XYZ_Ang lists 15 values, N_atoms needs 12" in problems[5]
    assert "not a number" in problems[6]
    assert "U0" in problems[7]
