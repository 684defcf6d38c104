"""`irrepscope bench train` on a tiny configuration: worker processes, table, record."""

from __future__ import annotations

import os
import re

import pytest

from irrepscope.bench import train


def test_quick_run_of_a_tiny_config_records_every_column(tmp_path) -> None:
    record = tmp_path / "benchmarks.md"
    results = train.run(quick=True, record=record, configs=[([0, 1], 4, 1.0)])
    (r,) = results
    assert r["stock"] > 0 and r["fused"] > 0 and r["stock_tuned"] > 0
    assert r["speedup"] == pytest.approx(r["fused"] / r["stock"])
    assert r["params"] > 0 and r["gflop"] > 0 and 0 < r["bound_fraction"]
    text = record.read_text()
    assert "irrepscope bench train --quick" in text
    assert "| [0, 1] | 4 |" in text and "stock, tuned malloc mol/s" in text
    assert "MALLOC_MMAP_MAX_=0" in text  # the tuned run's environment is stated
    assert "it ranged" in text  # the matmul rate's spread across the run is stated
    assert "What torch.compile (inductor, CPU) adds" in text
    assert "| torch.compile ms |" in text


def test_worker_environment_is_its_own(monkeypatch) -> None:
    """The tuned-malloc variables reach the worker and do not leak into this process."""
    monkeypatch.delenv("MALLOC_MMAP_MAX_", raising=False)
    worker = train.StepWorker([0], 2, "fused", 1, {"MALLOC_MMAP_MAX_": "0"})
    try:
        assert worker.ask("env:MALLOC_MMAP_MAX_") == "0"
    finally:
        worker.close()
    assert "MALLOC_MMAP_MAX_" not in os.environ


def test_a_dying_worker_raises_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="benchmark worker died"):
        train.StepWorker([0, 1], 4, "no-such-build", 1, {})


def test_profile_breakdown_gives_matrix_products_their_rate() -> None:
    model, optimizer = train.build([0, 1, 2], 4, "fused")
    text = train.profile_breakdown(model, optimizer, train.qm9_batches(1), top=1000)
    entries = [re.fullmatch(r"(.+) (\d+)%(?: at (\d+) GFLOP/s)?", part).groups()
               for part in text.split(", ")]
    rated = {name for name, _, rate in entries if rate is not None}
    assert {"mm", "bmm"} <= rated <= {op.removeprefix("aten::") for op in train.MATRIX_PRODUCTS}
    shares = [int(share) for _, share, _ in entries]
    assert abs(sum(shares) - 100) <= len(shares) / 2  # each share rounded to the nearest 1%
