"""Benchmark harnesses behind ``irrepscope bench``; each records its own section."""

from __future__ import annotations

import importlib
from pathlib import Path

# target -> module whose ``run(quick, record)`` measures and records that benchmark
_TARGETS = {
    "sph": "irrepscope.bench.sph",
    "data": "irrepscope.bench.data",
    "train": "irrepscope.bench.train",
    "demo": "irrepscope.bench.demo",
}


def run_benchmarks(target: str, quick: bool = False, record: Path | None = None) -> None:
    """Run one benchmark target (or all) and record the results in ``record`` when given."""
    names = list(_TARGETS) if target == "all" else [target]
    for name in names:
        module = importlib.import_module(_TARGETS[name])
        module.run(quick=quick, record=record)
