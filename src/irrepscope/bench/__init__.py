"""Benchmark harnesses behind ``irrepscope bench``; each records its own section."""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

from irrepscope.errors import IrrepscopeError

# target -> module whose ``run(quick, record)`` measures and records that benchmark
_TARGETS = {
    "sph": "irrepscope.bench.sph",
    "data": "irrepscope.bench.data",
    "train": "irrepscope.bench.train",
    "train-graphs": "irrepscope.bench.train_graphs",
    "train-gpu": "irrepscope.bench.train_gpu",
    "demo": "irrepscope.bench.demo",
    "recipe": "irrepscope.bench.recipe",
    "explorer": "irrepscope.bench.explorer",
    "tracking": "irrepscope.bench.tracking",
}


# target -> options its ``run`` takes besides (quick, record)
OPTIONS = {"sph": ("sizes", "sets", "compiled"), "train-gpu": ("graphs", "configs"),
           "train-graphs": ("graphs", "configs", "scaling_configs"), "explorer": ("run_dir",)}


def run_benchmarks(target: str, quick: bool = False, record: Path | None = None,
                   **options: object) -> None:
    """Run one benchmark target (or all) and record the results in ``record`` when given.

    'all' leaves out 'train-gpu' when no CUDA device is visible and 'explorer' when the demo
    has not been trained into runs/demo (and says so). ``options`` (see
    ``OPTIONS``; None means the default) go to the one target that takes them.
    """
    given = {name: value for name, value in options.items() if value is not None}
    foreign = sorted(set(given) - set(OPTIONS.get(target, ())))
    if foreign:
        raise IrrepscopeError(f"bench {target}: option(s) {', '.join(foreign)} apply only to "
                              + ", ".join(f"{t} ({', '.join(o)})" for t, o in OPTIONS.items()))
    names = list(_TARGETS) if target == "all" else [target]
    if target == "all" and not torch.cuda.is_available():
        names.remove("train-gpu")
        print("bench all: no CUDA device visible, train-gpu left out", flush=True)
    if target == "all" and not (Path("runs/demo/l03456_h16") / "best.ckpt").exists():
        names.remove("explorer")
        print("bench all: no trained demo run in runs/demo (irrepscope demo), explorer left out",
              flush=True)
    for name in names:
        module = importlib.import_module(_TARGETS[name])
        module.run(quick=quick, record=record, **given)
