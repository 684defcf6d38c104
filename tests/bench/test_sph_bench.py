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


def test_chosen_sizes_and_sets_are_measured_and_named_in_the_command(tmp_path: Path) -> None:
    from irrepscope.cli import main

    record = tmp_path / "benchmarks.md"
    assert main(["bench", "sph", "--sizes", "8,9", "--orders", "[10]", "--no-compile",
                 "--record", str(record)]) == 0
    text = record.read_text()
    assert "irrepscope bench sph --sizes 8,9 --orders '[10]' --no-compile" in text
    rows = [line for line in text.splitlines() if line.startswith("| 2^")]
    assert {row.split(" | ")[0] for row in rows} == {"| 2^8", "| 2^9"}
    assert all(" | [10] | " in row for row in rows)
    assert "torch.compile (default inductor; not measured in this run)" in text


def test_bad_options_say_what_is_wrong(capsys) -> None:
    from irrepscope.cli import main

    assert main(["bench", "sph", "--orders", "[0..99]", "--no-record"]) == 2
    assert "unknown order set(s) [0..99]; choose from" in capsys.readouterr().err
    assert main(["bench", "data", "--sizes", "10", "--no-record"]) == 2
    assert "bench data: option(s) sizes apply only to sph" in capsys.readouterr().err
