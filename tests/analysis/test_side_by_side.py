"""compare: per-l utilization numbers of several runs side by side, and their initial weights."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from irrepscope.analysis import report
from irrepscope.analysis.side_by_side import (
    CSV_FILE,
    NUMBERS,
    side_by_side,
    write_side_by_side_csv,
)
from irrepscope.train.init_from import write_init_record


def _summary(orders: list[int], base: float) -> dict:
    rows = [{"block": 1, "l": l, "variance_share": base + l, "ablation_rel_mse": 10 * base + l,
             "probe_r2_energy": float("nan"), "probe_r2_nsps": 0.5} for l in orders]
    rows.append({"block": 0, "l": 0, "variance_share": 99.0, "ablation_rel_mse": 99.0,
                 "probe_r2_energy": 99.0, "probe_r2_nsps": 99.0})  # not the last block
    return {"last_block": 1, "table": rows}


def test_one_column_per_run_one_row_per_l(tmp_path: Path) -> None:
    summaries = [_summary([0, 1, 2], 0.1), _summary([0, 3], 0.2)]
    header, rows = side_by_side(["a", "b"], summaries, "variance_share")
    assert header == ["l", "a", "b"]
    assert rows == [["l=0", "0.1", "0.2"], ["l=1", "1.1", "-"], ["l=2", "2.1", "-"],
                    ["l=3", "-", "3.2"]]
    _, probe = side_by_side(["a", "b"], summaries, "probe_r2_energy")
    assert probe[0] == ["l=0", "n/a", "n/a"]
    write_side_by_side_csv(tmp_path / "t.csv", ["a", "b"], summaries)
    with open(tmp_path / "t.csv") as handle:
        table = list(csv.DictReader(handle))
    assert [r["number"] for r in table] == [n for n in NUMBERS for _ in range(4)]
    ablation = [r for r in table if r["number"] == "ablation_rel_mse"]
    assert [(r["l"], r["a"], r["b"]) for r in ablation] == [
        ("0", "1", "2"), ("1", "2", "-"), ("2", "3", "-"), ("3", "-", "5")]


def _record(source: Path) -> dict:
    return {"source": str(source / "best.ckpt"), "run_dir": str(source.resolve()),
            "checkpoint": "best.ckpt", "epoch": 1, "source_model": None, "partial": False,
            "tensors_loaded": 12, "tensors_total": 14, "parameters_loaded": 1000,
            "parameters_total": 1234, "loaded": [], "new_in_target": ["head.dipole"],
            "unused_from_source": [], "refitted": ["reference.element_energy"],
            "shape_mismatch": []}


def test_compare_shows_both_runs_and_the_pretraining(fake_runs, tmp_path: Path) -> None:
    run_a, run_b = fake_runs
    write_init_record(run_b, _record(run_a))
    report.compare_runs(fake_runs, tmp_path / "cmp", progress=False)
    md = (tmp_path / "cmp" / "report.md").read_text()
    assert "## Initial weights" in md
    assert "run_a: trained from scratch" in md
    assert ("run_b: initialised from run_a (best.ckpt), epoch 1: loaded 12 of 14 tensors "
            "(1,000 of 1,234 parameters); not loaded: new in this model: head.dipole; "
            "refitted on this run's training split: reference.element_energy") in md
    assert "Utilization per l, side by side (last block)" in md
    assert "| l | run_a | run_b |" in md
    with open(tmp_path / "cmp" / CSV_FILE) as handle:
        table = list(csv.DictReader(handle))
    for run in fake_runs:
        with open(run / "analysis" / "utilization.csv") as handle:
            own = [r for r in csv.DictReader(handle) if r["block"] == "2"]
        shares = [r[run.name] for r in table if r["number"] == "variance_share"]
        assert shares == [f"{float(r['variance_share']):.4g}" for r in own]
    runs = json.loads((tmp_path / "cmp" / "comparison.json").read_text())["runs"]
    assert runs[0]["init_from"] is None and runs[1]["init_from"]["epoch"] == 1
    single = (run_b / "analysis" / "report.md").read_text()
    assert "run_b: initialised from" in single
