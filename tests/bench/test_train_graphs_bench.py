"""`irrepscope bench train-graphs` on a tiny configuration: both tables, every build recorded."""

from __future__ import annotations

import pytest

from irrepscope.bench import train_graphs


@pytest.mark.slow  # about 2 minutes: five worker processes on radius graphs
def test_quick_run_records_graph_and_scaling_tables(tmp_path) -> None:
    record = tmp_path / "benchmarks.md"
    results = train_graphs.run(quick=True, record=record, configs=[([0, 1], 4)],
                               graphs=[("radius", 6.0)], scaling_configs=[([0, 1], 4)],
                               cutoffs=[6.0])
    (row,) = results["graphs"]
    assert set(row["mol_s"]) == {"fused", "new", "aggregate"}  # no stock on radius when quick
    assert all(v > 0 for v in row["mol_s"].values()) and row["degree"] > 5
    (scaled,) = results["scaling"]
    assert set(scaled["mol_s"]) == {"fused", "aggregate"}
    text = record.read_text()
    assert "irrepscope bench train-graphs --quick" in text
    assert "| [0, 1] | 4 | radius 6 Å |" in text and "| new / fused |" in text
    assert "Cutoff scaling" in text and "| aggregate ms/step |" in text


def test_train_graphs_takes_a_subset_from_the_command_line(monkeypatch, tmp_path) -> None:
    """--configs/--graphs reach train-graphs, which then skips its scaling table and records
    the subset in its own section (a full run's numbers are never replaced by a subset's)."""
    from irrepscope.bench import train_graphs
    from irrepscope.cli import main

    seen = {}
    monkeypatch.setattr(train_graphs, "measure", lambda o, h, g, c, builds, n, r: seen.setdefault(
        (tuple(o), h, g, c), {"L": o, "h": h, "graph": g, "cutoff": c, "degree": 2.0,
                              "mol_s": dict.fromkeys(builds, 1.0),
                              "memory": dict.fromkeys(builds, 1.0)}))
    record = tmp_path / "b.md"
    assert main(["bench", "train-graphs", "--quick", "--configs", "0,1,2:32", "--graphs",
                 "radius", "--record", str(record)]) == 0
    assert list(seen) == [((0, 1, 2), 32, "radius", 6.0)]
    text = record.read_text()
    assert "## train-graphs (subset) (quick)" in text
    assert "irrepscope bench train-graphs --quick --graphs radius --configs '0,1,2:32'" in text
