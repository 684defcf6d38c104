"""GPU training throughput (`irrepscope bench train-gpu`): stock e3nn vs fused vs cuequivariance.

The five configurations of ``irrepscope bench train``, batch 32, QM9 bond graphs and radius
graphs (6 Å), one training step = forward + backward + AdamW, the same batches for every build.
Builds: *stock* (e3nn SH + e3nn tensor product), *fused* (irrepscope SH, backend 'auto', which is
Triton on CUDA when importable, + ``FusedEdgeMessage``) and, when cuequivariance-torch is
importable, *cueq* (``CueqEdgeMessage``: NVIDIA's kernel when cuequivariance-ops-torch-cu12 or
-cu13 is installed).
All builds live in one process (a GPU allocator caches per process, so builds do not shape each
other's host heap as on CPU) and take turns, repeat by repeat; the median step is reported.
Peak memory: ``torch.cuda.max_memory_allocated`` during one step above the memory before it.
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from pathlib import Path

import torch

from irrepscope.bench.record import markdown_table, publish
from irrepscope.bench.train import (
    BATCH_SIZE,
    BUILDS,
    CONFIGS,
    build,
    configs_option,
    qm9_batches,
    train_steps,
)
from irrepscope.errors import IrrepscopeError

CUEQ_BUILD = {"sh_backend": "auto", "tensor_product": "cueq"}


def gpu_builds() -> dict[str, dict]:
    """Builds compared on the device: stock, fused and (when importable) cueq."""
    builds = dict(BUILDS)
    if importlib.util.find_spec("cuequivariance_torch") is not None:
        builds["cueq"] = CUEQ_BUILD
    return builds


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_seconds(model, optimizer, batches: list, device: torch.device) -> float:
    """Mean wall seconds of one training step on ``device`` (kernels finished)."""
    _synchronize(device)
    start = time.perf_counter()
    train_steps(model, optimizer, batches)
    _synchronize(device)
    return (time.perf_counter() - start) / len(batches)


def step_peak_mib(model, optimizer, batches: list, device: torch.device) -> float | None:
    """Device memory a training step allocates above what was allocated before it, MiB."""
    if device.type != "cuda":
        return None
    _synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    train_steps(model, optimizer, batches[:1])
    _synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - before) / 2**20


def measure_config(orders: list[int], hidden: int, batches: list, repeats: int,
                   device: torch.device, builds: dict[str, dict]) -> dict:
    """mol/s and peak step memory of every build of one configuration, interleaved repeats."""
    trained = {}
    for name in builds:
        model, optimizer = build(orders, hidden, name, builds=builds)
        model.to(device)
        train_steps(model, optimizer, batches[:1])  # first-call setup: kernels, autotuning
        trained[name] = model, optimizer
    memory = {name: step_peak_mib(*trained[name], batches, device) for name in trained}
    times: dict[str, list[float]] = {name: [] for name in trained}
    for _ in range(repeats):
        for name, (model, optimizer) in trained.items():
            times[name].append(step_seconds(model, optimizer, batches, device))
    mol_s = {name: BATCH_SIZE / statistics.median(t) for name, t in times.items()}
    return {"L": orders, "h": hidden, "mol_s": mol_s, "memory": memory,
            "params": sum(p.numel() for p in trained["fused"][0].parameters())}


def results_table(results: list[dict], builds: list[str]) -> str:
    """Markdown table: mol/s per build, speed-up over stock, peak step memory per build."""
    others = [b for b in builds if b != "stock"]
    header = (["graph", "L", "h", "params"] + [f"{b} mol/s" for b in builds]
              + [f"{b} / stock" for b in others] + [f"{b} peak MiB" for b in builds])

    def mem(value):
        return "n/a" if value is None else f"{value:.0f}"

    rows = [[r["graph"], f"{r['L']}", r["h"], f"{r['params']:,}"]
            + [f"{r['mol_s'][b]:.0f}" for b in builds]
            + [f"{r['mol_s'][b] / r['mol_s']['stock']:.1f}x" for b in others]
            + [mem(r["memory"][b]) for b in builds] for r in results]
    return markdown_table(header, rows)


GRAPHS = ("bonds", "radius")


def run(quick: bool = False, record: Path | None = None, configs=None,
        device: str | None = None, graphs: tuple[str, ...] | None = None) -> list[dict]:
    """Measure every (graph, configuration) on ``device`` (default: the CUDA device); print and
    record. ``graphs``: QM9 bond graphs and/or radius graphs (6 Å); default both (bonds only
    with ``quick``)."""
    if device is None:
        if not torch.cuda.is_available():
            raise IrrepscopeError("irrepscope bench train-gpu needs a CUDA device and none is "
                                  "visible; `irrepscope bench train` measures the CPU")
        device = "cuda"
    device = torch.device(device)
    graphs = tuple(graphs or (GRAPHS[:1] if quick else GRAPHS))
    unknown = [g for g in graphs if g not in GRAPHS]
    if unknown:
        raise IrrepscopeError(f"bench train-gpu: unknown graph kind(s) {', '.join(unknown)}; "
                              f"use {' or '.join(GRAPHS)}")
    builds = gpu_builds()
    num_batches, repeats = (2, 1) if quick else (10, 3)
    options = "" if graphs == (GRAPHS[:1] if quick else GRAPHS) else "--graphs " + ",".join(graphs)
    options += " " + configs_option(configs)
    results: list[dict] = []
    total = len(graphs) * len(CONFIGS if configs is None else configs)
    for graph in graphs:
        batches = [batch.to(device) for batch in qm9_batches(num_batches, graph)]
        edges = sum(b.edge_index.shape[1] for b in batches) / sum(b.num_nodes for b in batches)
        for orders, hidden, *_ in (CONFIGS if configs is None else configs):
            result = measure_config(orders, hidden, batches, repeats, device, builds)
            results.append({**result, "graph": f"{graph} ({edges:.1f} edges/atom)"})
            print(f"{graph} L={orders} h={hidden}: " + ", ".join(
                f"{b} {v:.0f} mol/s" for b, v in result["mol_s"].items()), flush=True)
            # recorded row by row: a run cut short keeps what it measured
            body = _record_body(results, builds, device, num_batches, repeats)
            publish(body, record, "train-gpu", quick, options=options.strip(),
                    echo=len(results) == total)
    return results


def _record_body(results: list[dict], builds: dict, device: torch.device, num_batches: int,
                 repeats: int) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)
    versions = f"torch {torch.__version__}"
    if importlib.util.find_spec("triton") is not None:
        import triton

        versions += f", triton {triton.__version__}"
    return (f"Device: {name} ({versions}). Batch {BATCH_SIZE}, QM9 graphs (bonds; radius = "
            f"6 Å cutoff), {num_batches} batches x {repeats} interleaved repeats (median), "
            f"float32; {_cueq_note(builds, device)}. Peak MiB: device memory a training step "
            f"allocates above what was allocated before it.\n\n"
            f"{results_table(results, list(builds))}\n")


def _cueq_note(builds: dict[str, dict], device: torch.device) -> str:
    """Which cuequivariance path the cueq column measured."""
    from irrepscope.model.cueq_message import cueq_kernels_available

    if "cueq" not in builds:
        return "cueq: not measured (cuequivariance-torch is not installed)"
    if device.type == "cuda" and cueq_kernels_available():
        return "cueq: cuequivariance's CUDA kernel"
    return "cueq: cuequivariance's PyTorch path (no kernel package or no GPU)"
