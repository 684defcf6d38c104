"""The generic entry point: any features with their irreps -> the numbers of `analyze`."""

from __future__ import annotations

import numpy as np
import pytest
from e3nn import o3

from irrepscope.analysis import analyze
from irrepscope.analysis.analyze import TABLE_COLUMNS, RunProbe
from irrepscope.analysis.features import (
    FeatureSet,
    Layer,
    analyse_features,
    load_features,
    pool,
    save_features,
)
from irrepscope.cli import main
from irrepscope.errors import DataError

MODEL_COLUMNS = ("ablation_rel_mse", "grad_abs", "grad_x_input_share")


def _features_of(analysis: analyze.Analysis) -> FeatureSet:
    """A run's analysed embeddings as a FeatureSet (every analysed block, in order)."""
    emb = analysis.embeddings
    return FeatureSet([Layer(f"block{b}", emb.joint[b], o3.Irreps(emb.irreps[b]))
                       for b in sorted(emb.joint)], emb.energy_true, emb.energy_pred,
                      list(emb.smiles))


def _numbers(table: list[dict]) -> list[list[float]]:
    return [[row[c] for c in TABLE_COLUMNS if c != "block"] for row in table]


def test_run_embeddings_give_the_numbers_of_analyze(fake_runs, tmp_path) -> None:
    run = analyze.analyse(fake_runs[0], progress=False)
    path = save_features(_features_of(run), tmp_path / "run.npz")
    seed = run.summary["seed"]
    probe = RunProbe(analyze.open_run(fake_runs[0]), run.embeddings, 128, seed, 64)
    generic = analyse_features(load_features(path), tmp_path / "generic", probe=probe,
                               seed=seed, progress=False)
    np.testing.assert_equal(_numbers(generic.table), _numbers(run.table))
    assert all(np.isfinite(row[c]) for row in generic.table for c in MODEL_COLUMNS)
    assert (tmp_path / "generic" / "utilization.csv").exists()


def test_per_atom_features_are_pooled(tmp_path) -> None:
    rng = np.random.default_rng(0)
    molecule = np.repeat(np.arange(12), rng.integers(1, 5, size=12))
    per_atom = rng.normal(size=(len(molecule), 4))
    arrays = {"features:h": per_atom, "irreps:h": np.array("1x0e+1x1o")}
    np.savez(tmp_path / "atoms.npz", layers=np.array(["h"]), molecule=molecule,
             pooling=np.array("mean"), **arrays)
    loaded = load_features(tmp_path / "atoms.npz").layers[0].features
    np.testing.assert_allclose(loaded[3], per_atom[molecule == 3].mean(0))
    np.testing.assert_allclose(pool(per_atom, molecule, 12).sum(0), per_atom.sum(0))


def _write(path, **arrays) -> None:
    base = {"layers": np.array(["a"]), "features:a": np.ones((6, 4)),
            "irreps:a": np.array("1x0e+1x1o")}
    base.update(arrays)
    np.savez(path, **{k: v for k, v in base.items() if v is not None})


@pytest.mark.parametrize(("arrays", "message"), [
    ({"irreps:a": np.array("2x0e+1x1o")}, r"layer 'a': features have 4 columns but irreps "
                                          r"2x0e\+1x1o need 5"),
    ({"features:a": np.where(np.eye(6, 4) > 0, np.nan, 1.0)}, r"layer 'a': features are NaN "
                                                               r"or infinite in row 0 \(4 rows"),
    ({"irreps:a": np.array("4xq")}, r"layer 'a': irreps '4xq' cannot be parsed"),
    ({"irreps:a": None}, r"layer 'a' has no 'irreps:a' array"),
    ({"layers": None}, r"no 'layers' array"),
    ({"extra": np.ones(3)}, r"unknown array\(s\) extra"),
    ({"smiles": np.array(["C", "O"])}, r"2 SMILES for 6 molecules"),
    ({"targets": np.ones(5)}, r"targets has shape \(5,\); expected \(6,\)"),
    ({"molecule": np.array([0, 0, 2, 2, 3, 3])}, r"molecule 1 has no atoms"),
])
def test_bad_features_files(tmp_path, arrays: dict, message: str) -> None:
    _write(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message):
        load_features(tmp_path / "bad.npz")


def test_cli_analyze_features(tmp_path, capsys) -> None:
    rng = np.random.default_rng(1)
    irreps = o3.Irreps("3x0e+2x1o+2x2e")
    layers = [Layer(name, rng.normal(size=(30, irreps.dim)), irreps) for name in ("x", "y")]
    save_features(FeatureSet(layers, targets=rng.normal(size=30)), tmp_path / "f.npz")
    assert main(["analyze", "--features", str(tmp_path / "f.npz")]) == 0
    report = tmp_path / "f_analysis" / "report.md"
    text = report.read_text()
    assert "x (3x0e+2x1o+2x2e)" in text and "No SMILES were given" in text
    assert "Ablation and input gradients: not available" in text
    verdict = text.split("## Verdict")[1].split("\n## ")[0]  # first, saying what is not known
    assert text.index("## Verdict") < text.index("## Utilization")
    assert "The model's error is not known" in verdict and "ablation needs the model" in verdict
    assert "Whether the model beats counting atoms" not in verdict  # no error, no baseline claim
    rows = np.genfromtxt(tmp_path / "f_analysis" / "utilization.csv", delimiter=",", names=True)
    assert all(np.isnan(rows[c]).all() for c in MODEL_COLUMNS)
    assert np.isfinite(rows["variance_share"]).all()
    assert main(["analyze"]) == 2 and "one of them" in capsys.readouterr().err
    assert main(["analyze", "--features", str(tmp_path / "f.npz"), "--block", "0"]) == 2
    assert "drop --block" in capsys.readouterr().err
    assert main(["analyze", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "--features / --model only" in capsys.readouterr().err


def test_switched_off_orders_are_marked(tmp_path) -> None:
    """l=1 features a millionth of l=0's (what training did to MACE's l>0 channels): the row
    says switched off with its scale, and the notes say its probes saw near-zero features."""
    rng = np.random.default_rng(2)
    irreps = o3.Irreps("4x0e+4x1o+4x2e")
    x = rng.normal(size=(40, irreps.dim))
    x[:, 4:16] *= 1e-6  # l=1
    fs = FeatureSet([Layer("h", x, irreps)], targets=rng.normal(size=40))
    analysis = analyse_features(fs, tmp_path / "out", progress=False)
    rows = {row["l"]: row for row in analysis.table}
    assert rows[1]["switched_off"] and rows[1]["relative_scale"] == pytest.approx(1e-6, rel=0.3)
    assert not rows[0]["switched_off"] and rows[0]["relative_scale"] == 1.0
    assert not rows[2]["switched_off"] and rows[2]["relative_scale"] == pytest.approx(1, rel=0.3)
    assert any(note.startswith("Block 0: l=1 switched off (features' RMS 9.5e-07 times")
               and "near-zero features" in note
               for note in analysis.notes)
    csv = np.genfromtxt(tmp_path / "out" / "utilization.csv", delimiter=",", names=True,
                        dtype=None, encoding="utf-8")
    assert list(csv["switched_off"]) == [False, True, False]
