"""`irrepscope bench train-gpu`: its code path run on the CPU, and its CUDA-only guard."""

from __future__ import annotations

import pytest
import torch

from irrepscope.bench import train_gpu
from irrepscope.bench.train import parse_config
from irrepscope.errors import IrrepscopeError


def test_quick_run_on_cpu_measures_every_build(tmp_path) -> None:
    """The same measurement with device='cpu' (no synchronisation, no device memory)."""
    record = tmp_path / "benchmarks.md"
    (r,) = train_gpu.run(quick=True, record=record, configs=[([0, 1], 4, 1.0)], device="cpu")
    builds = list(train_gpu.gpu_builds())
    assert builds[:2] == ["stock", "fused"]
    assert set(r["mol_s"]) == set(builds) and all(v > 0 for v in r["mol_s"].values())
    assert all(value is None for value in r["memory"].values())
    text = record.read_text()
    assert "irrepscope bench train-gpu --quick" in text
    assert "| [0, 1] | 4 |" in text and "| fused / stock |" in text
    if "cueq" in builds:
        assert "cueq: cuequivariance's" in text and "| cueq mol/s |" in text


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without a GPU")
def test_without_cuda_it_says_so() -> None:
    with pytest.raises(IrrepscopeError, match="needs a CUDA device"):
        train_gpu.run(quick=True, record=None)


@pytest.mark.gpu
def test_quick_run_on_the_gpu(tmp_path) -> None:
    (r,) = train_gpu.run(quick=True, record=tmp_path / "b.md", configs=[([0, 1, 2], 8, 1.0)])
    assert all(v > 0 for v in r["mol_s"].values())
    assert all(value is not None and value > 0 for value in r["memory"].values())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only machine's 'all'")
def test_bench_all_leaves_out_train_gpu_without_cuda(monkeypatch, capsys) -> None:
    import irrepscope.bench as bench

    ran = []
    monkeypatch.setattr(bench.importlib, "import_module", lambda name: type(
        "Module", (), {"run": staticmethod(lambda quick, record: ran.append(name))}))
    bench.run_benchmarks("all")
    assert "irrepscope.bench.train_gpu" not in ran and "irrepscope.bench.train" in ran
    assert "train-gpu left out" in capsys.readouterr().out


def test_both_graph_kinds_get_rows_and_unknown_kinds_are_refused(tmp_path) -> None:
    record = tmp_path / "benchmarks.md"
    results = train_gpu.run(quick=True, record=record, configs=[([0, 1], 4, 1.0)], device="cpu",
                            graphs=("bonds", "radius"))
    assert [r["graph"].split()[0] for r in results] == ["bonds", "radius"]
    bonds, radius = (float(r["graph"].split("(")[1].split()[0]) for r in results)
    assert radius > 3 * bonds  # 6 Å neighbourhoods hold many more atoms than bonds
    assert "irrepscope bench train-gpu --quick --graphs bonds,radius" in record.read_text()
    with pytest.raises(IrrepscopeError, match="unknown graph kind"):
        train_gpu.run(quick=True, record=None, device="cpu", graphs=("knn",))


def test_chosen_configurations_are_measured_and_named_in_the_command(tmp_path, capsys) -> None:
    from irrepscope.cli import main

    record = tmp_path / "benchmarks.md"
    assert parse_config("0,1,2:32") == ([0, 1, 2], 32)
    (r,) = train_gpu.run(quick=True, record=record, configs=[parse_config("0,2:4")],
                         device="cpu")
    assert (r["L"], r["h"]) == ([0, 2], 4)
    assert "irrepscope bench train-gpu --quick --configs '0,2:4'" in record.read_text()
    assert main(["bench", "train-gpu", "--configs", "0,1,2", "--no-record"]) == 2
    assert "a configuration is ORDERS:HIDDEN such as '0,1,2:32'" in capsys.readouterr().err

