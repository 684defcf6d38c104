"""analyze_run / compare_runs on a synthetic run (tiny random model, synthetic molecules)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from irrepscope.analysis import report
from irrepscope.errors import ConfigError


def test_analyze_and_compare(fake_runs, tmp_path) -> None:
    html = report.analyze_run(fake_runs[0], progress=False)
    out = fake_runs[0] / "analysis"
    assert html == out / "report.html" and (out / "report.md").exists()
    for name in ("projections_block2.png", "tensor_product_paths.png", "learning_curve.png",
                 "utilization.png", "utilization.csv", "embeddings.npz", "projections.npz"):
        assert (out / name).exists(), name
    assert len(list(out.glob("extremes_*.png"))) == 1
    with open(out / "utilization.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["l"]) for r in rows] == [0, 1, 2]
    assert [int(r["columns"]) for r in rows] == [4, 12, 20]
    assert sum(float(r["variance_share"]) for r in rows) == pytest.approx(1.0)
    text = html.read_text()
    assert "data:image/png;base64," in text and "<img src=\"projections" not in text
    assert "invariant" in text and "test_metrics" not in text
    saved = np.load(out / "embeddings.npz")
    np.testing.assert_array_equal(saved["test_indices"], np.arange(100, 140))
    assert saved["block2_l1_raw"].shape == (40, 12) and saved["block2_l2_invariant"].shape == (
        40, 4)

    compare = report.compare_runs(fake_runs, tmp_path / "cmp", progress=False, notes=["hello"])
    assert compare.exists() and (tmp_path / "cmp" / "report.md").exists()
    md = (tmp_path / "cmp" / "report.md").read_text()
    assert "run_a" in md and "run_b" in md and "hello" in md
    assert "not analysed yet" in md  # run_b was analysed by compare itself
    assert (fake_runs[1] / "analysis" / "report.html").exists()
    assert len(list((tmp_path / "cmp").glob("projections_*.png"))) == 2


def test_extra_block_and_panel(fake_runs) -> None:
    report.analyze_run(fake_runs[0], blocks=[0], panel="raw:l=1", progress=False)
    out = fake_runs[0] / "analysis"
    assert (out / "projections_block0.png").exists() and (out / "extremes_raw_l1.png").exists()
    with open(out / "utilization.csv") as handle:
        blocks = [int(r["block"]) for r in csv.DictReader(handle)]
    assert blocks == [0, 0, 0, 2, 2, 2]


def test_bad_panel_and_block(fake_runs) -> None:
    with pytest.raises(ConfigError, match="--panel"):
        report.analyze_run(fake_runs[0], panel="invariant:l=7", progress=False)
    with pytest.raises(ConfigError, match="block 9"):
        report.analyze_run(fake_runs[0], blocks=[9], progress=False)


def _write_baseline(run_dir, test_mse: float) -> None:
    (run_dir / "baseline.json").write_text(json.dumps(
        {"val_mse": 2.0, "val_mae": 1.0, "test_mse": test_mse, "test_mae": 0.8}))


def test_baseline_beside_the_model_and_warning_when_worse(fake_runs, tmp_path) -> None:
    """test MSE 2.25 eV²: worse than a 1.5 eV² baseline (warning), better than 9 eV² (none)."""
    worse, better = fake_runs
    _write_baseline(worse, 1.5)
    _write_baseline(better, 9.0)
    warning = "this model is worse than counting atoms"
    for run_dir, expect in ((worse, True), (better, False)):
        report.analyze_run(run_dir, progress=False)
        md = (run_dir / "analysis" / "report.md").read_text()
        html = (run_dir / "analysis" / "report.html").read_text()
        assert (warning in md) is expect and (warning in html) is expect
        assert "| composition baseline test MSE (eV²) |" in md
    md = (worse / "analysis" / "report.md").read_text()
    assert md.index(warning) < md.index("## Metrics")  # at the top
    assert "| composition baseline test MSE (eV²) | 1.5 |" in md
    assert "| test MSE / baseline test MSE | 1.5 |" in md
    summary = json.loads((worse / "analysis" / "summary.json").read_text())
    assert summary["baseline_test_mse"] == 1.5 and summary["baseline_val_mse"] == 2.0

    report.compare_runs(fake_runs, tmp_path / "cmp", progress=False)
    md = (tmp_path / "cmp" / "report.md").read_text()
    assert "| baseline test MSE (eV²) | MSE / baseline |" in md
    assert "| 2.25 | 1.5 | 1.5 |" in md and "| 2.25 | 9 | 0.25 |" in md
    assert f"run_a: {warning}" in md and f"run_b: {warning}" not in md


def test_missing_baseline_is_a_note_not_an_error(fake_runs) -> None:
    report.analyze_run(fake_runs[0], progress=False)
    md = (fake_runs[0] / "analysis" / "report.md").read_text()
    assert "Composition baseline unavailable" in md and "worse than counting atoms" not in md
    assert "- Whether the model beats counting atoms is not known: " in md  # said in the verdict


def test_a_pruned_run_opens_with_what_pruning_did(fake_runs) -> None:
    record = {"dropped_orders": [2], "source_run": "runs/big", "epochs_trained": 0,
              "models": {"original": {"parameters": 2000}, "pruned": {"parameters": 1234}},
              "errors": {"original": {"test_mse": 2.0}, "pruned": {"test_mse": 2.25}}}
    (fake_runs[0] / "pruned_from.json").write_text(json.dumps(record))
    (fake_runs[0] / "prune_report.md").write_text("# Pruned run\n")
    report.analyze_run(fake_runs[0], progress=False)
    md = (fake_runs[0] / "analysis" / "report.md").read_text()
    verdict = md.split("## Verdict")[1].split("\n## ")[0]
    assert md.index("## Verdict") < md.index("## Metrics")
    assert "- Pruned l=2 from runs/big: 766 of 2,000 parameters removed (38%)." in verdict
    assert "2.25 eV² right after it (×1.12)" in verdict
    assert "×1.5" in verdict  # then the run's own ablation sentences


def test_other_targets_stand_beside_their_baselines() -> None:
    targets = {"test_dipole_mae": 0.1, "test_dipole_mae_debye": 0.48, "test_dipole_norm_mae": 0.05,
               "test_dipole_angle_deg": 12.5, "baseline_test_dipole_zero_mae": 0.45,
               "baseline_test_dipole_mean_norm_mae": 0.3, "test_charges_mae": 0.02,
               "baseline_test_charges_zero_mae": 0.25,
               "baseline_test_charges_element_mean_mae": 0.1}
    (_, title), (_, items), _ = report._targets_block({"targets": targets})
    assert "Other targets" in title
    assert items == ["charges MAE 0.02 e (predicting zero: 0.25, each element's mean: 0.1)",
                     "dipole MAE 0.1 e·Å (0.48 D) (predicting zero: 0.45), norm MAE 0.05 "
                     "(predicting the mean norm: 0.3), angle 12.5°"]
    assert report._targets_block({"targets": {}}) == []
