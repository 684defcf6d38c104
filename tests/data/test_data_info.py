"""`irrepscope data info`: counts, label statistics, bond check and cache, as dict and text."""

from __future__ import annotations

import json

import pytest

from irrepscope.cli import main
from irrepscope.data.info import data_info, format_data_info


def test_data_info_on_a_slice(qm9_slice, tmp_path, monkeypatch):
    monkeypatch.setenv("IRREPSCOPE_QM9_DIR", str(qm9_slice))
    info = data_info(graph="bonds", cutoff=6.0, data_dir=tmp_path / "c", xyz=None,
                     energy_key="energy")
    assert info["molecules"] == 1800 and set(info["elements"]) <= {"H", "C", "N", "O", "F"}
    assert info["atoms_per_molecule"]["min"] >= 3 and info["atoms_per_molecule"]["max"] <= 29
    assert info["edges_per_molecule"]["min"] > 0
    assert info["bond_disagreements"] > 0 and len(info["bond_disagreement_examples"]) == 5
    assert info["cache_bytes"] > 0 and info["skipped"] == 0
    text = format_data_info(info)
    assert "molecules: 1,800" in text and "disagree with the SMILES" in text
    assert f"{info['bond_disagreements']:,}" in text and "cache: " in text
    mulliken = info["mulliken"]
    assert 1.0 < mulliken["dipole_mean_debye"] < 4.0 and mulliken["charge_problems"] == 0
    assert f"mean |dipole| {mulliken['dipole_mean_debye']} D" in text


def test_cli_data_info_json(qm9_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IRREPSCOPE_QM9_DIR", str(qm9_dir))
    assert main(["data", "info", "--graph", "radius", "--cutoff", "1.2",
                 "--data-dir", str(tmp_path / "c"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["molecules"] == 3 and info["edges_per_molecule"] == {"min": 4, "mean": 6.0,
                                                                     "max": 8}
    assert info["mulliken"] is None  # these CSVs have no Mulliken_pop column
    hartree = [-40.47893 + 37.846772 + 4 * 0.500273, -56.525887 + 54.583861 + 3 * 0.500273,
               -76.404702 + 75.064579 + 2 * 0.500273]
    assert info["label_mean_ev"] == pytest.approx(sum(hartree) / 3 * 27.211386246, abs=1e-4)


def test_cli_reports_bad_source_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IRREPSCOPE_QM9_DIR", str(tmp_path / "missing"))
    assert main(["data", "info", "--data-dir", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("irrepscope: error:") and "does not exist" in err
