"""The sph benchmark runs end to end in quick mode and records its section."""

from __future__ import annotations

from pathlib import Path

import torch

from irrepscope.bench import sph


def test_quick_run_records_a_table(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sph, "SETS", {"[0,3]": [0, 3], "[2]": [2]})
    record = tmp_path / "benchmarks.md"
    threads = torch.get_num_threads()
    rows = sph.run(quick=True, record=record)
    assert torch.get_num_threads() == threads
    names = {r[3] for r in rows}
    assert {"irrepscope torch", "e3nn"} <= names
    assert len(rows) >= 8 and all(float(r[4]) > 0 for r in rows)
    text = record.read_text()
    assert "<!-- bench:sph (quick):start -->" in text and "irrepscope bench sph --quick" in text
    assert all(r[6] == "1.00" for r in rows if r[3] == "e3nn")
