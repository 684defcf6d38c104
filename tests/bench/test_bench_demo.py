"""`irrepscope bench demo` records both timings (the demo itself is stubbed: it trains)."""

from __future__ import annotations

import json

from irrepscope.bench import demo


def test_records_first_and_second_run(monkeypatch, tmp_path) -> None:
    calls = []
    report = tmp_path / "report.html"
    report.write_text("<html></html>")

    def fake_time_demo(out, overrides):
        calls.append((out, overrides))
        for name, mse in (("l012_h16", 0.15), ("l03456_h16", 0.3)):
            (out / name).mkdir(parents=True, exist_ok=True)
            (out / name / "test_metrics.json").write_text(json.dumps(
                {"test_mse": mse, "test_mae": 0.25, "baseline_test_mse": 1.5,
                 "baseline_test_mae": 0.9}))
        return (700.0 if len(calls) == 1 else 950.0), str(report)

    monkeypatch.setattr(demo, "_time_demo", fake_time_demo)
    record = tmp_path / "benchmarks.md"
    body = demo.run(quick=True, record=record)
    assert len(calls) == 2 and calls[0][0] == calls[1][0]  # second run reuses the same --out
    assert calls[0][1] == demo.QUICK_OVERRIDES
    assert "| first run (trains both configs) | 700 | yes |" in body
    assert "| second run (reuses runs and data cache) | 950 | NO |" in body
    assert "| l012_h16 | 0.1500 | 0.2500 | 1.5000 | 0.9000 | 0.100 | yes |" in body
    assert "| l03456_h16 | 0.3000 | 0.2500 | 1.5000 | 0.9000 | 0.200 | NO |" in body
    text = record.read_text()
    assert "<!-- bench:demo (quick):start -->" in text and "irrepscope bench demo --quick" in text
