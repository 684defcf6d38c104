"""Shared pytest configuration: visible skips for GPU-only and slow checks, dtype tolerances,
and tiny real-QM9 runs (an 80-molecule slice of qm9pack's CSV, h=4 models)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from irrepscope.train.config import RunConfig, load_config

os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="also run checks marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device; none is visible")
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow (not part of CI)")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
        if "slow" in item.keywords and not config.getoption("--runslow"):
            item.add_marker(skip_slow)


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def float_dtype(request: pytest.FixtureRequest) -> torch.dtype:
    """Each floating dtype a layer must support exactly (see irrepscope.testing.tolerance)."""
    return request.param


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Tiny models gain nothing from intra-op threads, and lose a lot on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


SLICE_ROWS = 80  # the first QM9 molecules: 1 to 7 heavy atoms, fast to train on


@pytest.fixture(scope="session")
def qm9_slice(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(folder holding qm9_part1.csv with the first SLICE_ROWS molecules, a cache folder)."""
    root = Path(importlib.util.find_spec("qm9pack").submodule_search_locations[0]) / "data"
    folder = tmp_path_factory.mktemp("qm9_slice")
    with open(root / "qm9_part1.csv") as source, open(folder / "qm9_part1.csv", "w") as out:
        for i, line in enumerate(source):
            if i > SLICE_ROWS:
                break
            out.write(line)
    return folder, tmp_path_factory.mktemp("qm9_cache")


@pytest.fixture(scope="session")
def tiny_settings(qm9_slice: tuple[Path, Path]) -> dict:
    """Config values of a tiny run: 64 molecules, h=4, batch 8, CPU, no progress bars."""
    folder, cache = qm9_slice
    return {
        "seed": 5,
        "data": {"qm9_dir": str(folder), "data_dir": str(cache), "subset": 64},
        "model": {"orders": [0, 1, 2], "hidden": 4, "num_layers": 1, "sh_backend": "e3nn"},
        "train": {"max_epochs": 2, "batch_size": 8, "accelerator": "cpu", "devices": 1,
                  "progress_bar": False},
    }


@pytest.fixture(scope="session")
def tiny_config(tiny_settings: dict) -> Callable[..., RunConfig]:
    """``tiny_config("train.max_epochs=4", ...)``: the tiny RunConfig with overrides applied."""
    return lambda *overrides: load_config(tiny_settings, overrides)


@pytest.fixture(scope="session")
def tiny_run(tiny_config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained tiny run directory (2 epochs on the QM9 slice, bond graph), shared read-only."""
    from irrepscope.train.run import train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(tiny_config(), tmp_path_factory.mktemp("tiny_run") / "run")
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_run_test_xyz(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny run's test molecules as an extxyz file with their energies (eV)."""
    from irrepscope.data.export import export_molecules
    from irrepscope.train.run import load_run_dataset, load_run_split

    dataset, split = load_run_dataset(tiny_run, progress=False), load_run_split(tiny_run)
    path = tmp_path_factory.mktemp("tiny_run_xyz") / "test.xyz"
    return export_molecules(dataset, split.test, path, energy_key="energy")[0]
