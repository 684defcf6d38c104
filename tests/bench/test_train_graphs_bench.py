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
