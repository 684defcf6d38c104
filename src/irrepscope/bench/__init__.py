"""Benchmark harnesses behind ``irrepscope bench``; each records its own section."""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

# target -> module whose ``run(quick, record)`` measures and records that benchmark
_TARGETS = {
    "sph": "irrepscope.bench.sph",
    "data": "irrepscope.bench.data",
    "train": "irrepscope.bench.train",
    "train-gpu": "irrepscope.bench.train_gpu",
    "demo": "irrepscope.bench.demo",
    "recipe": "irrepscope.bench.recipe",
}


def run_benchmarks(target: str, quick: bool = False, record: Path | None = None) -> None:
    """Run one benchmark target (or all) and record the results in ``record`` when given.

    'all' leaves out 'train-gpu' when no CUDA device is visible (and says so).
    """
    names = list(_TARGETS) if target == "all" else [target]
    if target == "all" and not torch.cuda.is_available():
        names.remove("train-gpu")
        print("bench all: no CUDA device visible, train-gpu left out", flush=True)
    for name in names:
        module = importlib.import_module(_TARGETS[name])
        module.run(quick=quick, record=record)
