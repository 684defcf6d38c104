"""analyze_run / compare_runs on a synthetic run (tiny random model, synthetic molecules)."""

from __future__ import annotations

import csv

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
