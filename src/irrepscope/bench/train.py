"""Training throughput, stock e3nn vs irrepscope's fused tensor product (`irrepscope bench train`).

CPU, 2 threads, batch 32, QM9 bond graphs, the same batches for both builds; one training step is
forward + backward + AdamW on the normalized MSE. Builds: *stock* = e3nn spherical harmonics +
e3nn ``FullyConnectedTensorProduct``; *fused* = irrepscope SH (backend 'auto') +
``FusedEdgeMessage``. Every build trains in its own worker process (a build's freed memory would
otherwise shape the other's allocations); the workers take turns (stock, fused, stock, ...) and
the median per build is reported, so machine noise hits both alike (on a machine shared with other
jobs, 2 OpenMP threads stall at every barrier; $IRREPSCOPE_BENCH_THREADS=1 then gives the
meaningful ratio).

The stock build materialises [E, weights] tensors larger than glibc's mmap threshold: with the
default allocator every step maps, page-faults and unmaps them. It is also measured with the
allocator told to keep freed memory (``TUNED_MALLOC``, environment set for its worker only), the
fairest stock number; the floors are defined against the default one.
The bound: necessary multiply-adds per step (radial MLP + tensor product, forward and backward,
counted per edge from the fused plan) at the fp32 matmul rate measured in the same run.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import torch

from irrepscope.bench.record import markdown_table, publish
from irrepscope.errors import IrrepscopeError

# (orders, h, the floor on the speed-up over the stock-e3nn build); the goal for every
# config is also >= BOUND_GOAL of the matmul bound
CONFIGS = [([0, 1, 2], 32, 4.0), ([0, 1, 2, 3, 4], 16, 15.0), ([0, 1, 2, 3, 4, 5, 6], 16, 30.0),
           ([0, 3, 4, 5, 6], 16, 15.0), ([0, 1, 2, 10], 32, 6.0)]
BOUND_GOAL = 0.5
BATCH_SIZE = 32
THREADS = int(os.environ.get("IRREPSCOPE_BENCH_THREADS", "2"))  # override only on busy machines
# fused: per-edge weights everywhere; new: the cost model's choice per block (the default);
# aggregate: aggregate-then-weight everywhere
BUILDS = {"stock": {"sh_backend": "e3nn", "tensor_product": "e3nn", "aggregate": "never"},
          "fused": {"sh_backend": "auto", "tensor_product": "fused", "aggregate": "never"},
          "new": {"sh_backend": "auto", "tensor_product": "fused", "aggregate": "auto"},
          "aggregate": {"sh_backend": "auto", "tensor_product": "fused", "aggregate": "always"}}
# glibc: never mmap (freed memory returns to the heap), never trim the heap
TUNED_MALLOC = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**40)}
# measured runs: (name, build, extra environment of the worker process)
RUNS = [("stock", "stock", {}), ("fused", "fused", {}), ("stock_tuned", "stock", TUNED_MALLOC)]


def parse_config(text: str) -> tuple[list[int], int]:
    """'0,1,2:32' -> ([0, 1, 2], 32): orders and hidden multiplicity of one configuration."""
    try:
        orders, hidden = text.split(":")
        return [int(l) for l in orders.split(",")], int(hidden)
    except ValueError:
        raise IrrepscopeError(f"a configuration is ORDERS:HIDDEN such as '0,1,2:32', "
                              f"got {text!r}") from None


def configs_option(configs: list | None) -> str:
    """The ``--configs`` flag that reproduces a run on ``configs`` [(orders, h, ...)]; '' for
    the default five."""
    if configs is None or [tuple(c[:2]) for c in configs] == [tuple(c[:2]) for c in CONFIGS]:
        return ""
    return "--configs " + " ".join(f"'{','.join(map(str, c[0]))}:{c[1]}'" for c in configs)


def qm9_batches(num_batches: int, graph: str = "bonds", cutoff: float = 6.0) -> list:
    """``num_batches`` fixed batches of 32 QM9 molecules (``graph``: 'bonds' or 'radius' with
    ``cutoff`` Å), seeded train split."""
    from torch_geometric.data import Batch

    from irrepscope.data import load_dataset, make_split

    dataset = load_dataset(source="qm9", graph=graph, cutoff=cutoff, progress=False)
    train = make_split(len(dataset)).train[: num_batches * BATCH_SIZE]
    graphs = [dataset[int(i)] for i in train]
    return [Batch.from_data_list(graphs[k:k + BATCH_SIZE])
            for k in range(0, len(graphs), BATCH_SIZE)]


def matmul_gflops(size: int = 1024, repeats: int = 5) -> float:
    """Measured fp32 matrix-multiply rate (GFLOP/s) at the current thread count, best of repeats."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def step_multiply_adds(model: torch.nn.Module, batches: list) -> float:
    """Mean necessary multiply-adds per training step (radial MLP + TP, forward + backward)."""
    from irrepscope.model.tensor_product import FusedEdgeMessage

    per_edge = 0.0
    for module in model.modules():
        if isinstance(module, FusedEdgeMessage):
            macs = module.multiply_adds_per_edge()
            first = module.num_basis * module.radial_hidden  # basis needs no gradient: 1 backward
            per_edge += 2 * first + 3 * (macs["radial"] - first) + 3 * macs["tensor_product"]
    edges = statistics.mean(int(b.edge_index.shape[1]) for b in batches)
    return per_edge * edges


def build(orders: list[int], hidden: int, kind: str, seed: int = 0,
          builds: dict[str, dict] = BUILDS, cutoff: float = 6.0) -> tuple:
    """(model, AdamW optimizer) of build ``kind`` (a key of ``builds``), float32, the same seed."""
    from irrepscope.model import ModelConfig, build_model

    torch.manual_seed(seed)
    model = build_model(ModelConfig(orders=orders, hidden=hidden, cutoff=cutoff,
                                    **builds[kind]))
    return model, torch.optim.AdamW(model.parameters(), lr=1e-3)


def train_steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches: list) -> float:
    """Wall seconds of one training step per batch (forward + backward + AdamW), summed."""
    from irrepscope.train.speed import train_seconds

    return train_seconds(model, optimizer, batches)


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def _first_step_peak_mib(model, optimizer, batches) -> float | None:
    """Peak resident memory of one training step above the pre-step level, MiB (Linux; else None).

    Meaningful as a process's first step only: memory freed by earlier steps stays with the
    allocator and would hide a later step's growth.
    """
    clear_refs = Path("/proc/self/clear_refs")
    if not clear_refs.exists():
        return None
    clear_refs.write_text("5")  # resets the high-water mark VmHWM
    before = _rss_kib("VmRSS")
    train_steps(model, optimizer, batches[:1])
    return (_rss_kib("VmHWM") - before) / 1024


def peak_step_memory_mib(orders: list[int], hidden: int, kind: str) -> float | None:
    """Peak memory of a first training step, in a fresh worker process (Linux; else None)."""
    worker = StepWorker(orders, hidden, kind, 1, {}, warm_up=False)
    try:
        return worker.ask("peak")
    finally:
        worker.close()


MATRIX_PRODUCTS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")


def profile_breakdown(model, optimizer, batches, top: int = 6) -> str:
    """Share of one step's CPU time by operator (fused build), as 'op 41%, ...'.

    Matrix products also get their achieved rate, 'bmm 49% at 31 GFLOP/s' (the profiler's FLOP
    count over the operator's self time): what separates the step from the matmul bound.
    """
    from torch.profiler import profile

    with profile(with_flops=True) as prof:
        train_steps(model, optimizer, batches[:1])
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1.0

    def share(event) -> str:
        text = f"{event.key.replace('aten::', '')} {100 * event.self_cpu_time_total / total:.0f}%"
        if event.key in MATRIX_PRODUCTS and event.flops and event.self_cpu_time_total > 0:
            text += f" at {event.flops / event.self_cpu_time_total / 1e3:.0f} GFLOP/s"  # per µs
        return text

    return ", ".join(share(e) for e in events[:top])


def _step_worker(connection, orders: list[int], hidden: int, kind: str, num_batches: int,
                 warm_up: bool, graph: str, cutoff: float) -> None:
    """Worker process: build, warm up, then answer 'time' / 'profile' / 'work' until 'stop'."""
    torch.set_num_threads(THREADS)
    batches = qm9_batches(num_batches, graph, cutoff)
    model, optimizer = build(orders, hidden, kind, cutoff=cutoff)
    if warm_up:  # first-call setup, allocator
        train_steps(model, optimizer, batches[:1])
    connection.send("ready")
    while (command := connection.recv()) != "stop":
        if command == "peak":  # ask first, in a worker without warm-up
            connection.send(_first_step_peak_mib(model, optimizer, batches))
        elif command == "time":
            connection.send(train_steps(model, optimizer, batches) / len(batches))
        elif command == "profile":
            connection.send(profile_breakdown(model, optimizer, batches))
        elif command.startswith("env:"):  # what a variable is in this worker (tests)
            connection.send(os.environ.get(command[4:]))
        elif command == "graph":  # edges per atom of the batches
            connection.send(sum(b.edge_index.shape[1] for b in batches)
                            / sum(b.num_nodes for b in batches))
        elif command == "work":
            connection.send((step_multiply_adds(model, batches),
                             sum(p.numel() for p in model.parameters())))
    connection.close()


class StepWorker:
    """One build of one configuration, training in its own process (``env`` added to its own)."""

    def __init__(self, orders: list[int], hidden: int, kind: str, num_batches: int,
                 env: dict[str, str], warm_up: bool = True, graph: str = "bonds",
                 cutoff: float = 6.0) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.connection, child_end = context.Pipe()
        self.process = context.Process(target=_step_worker,
                                       args=(child_end, orders, hidden, kind, num_batches, warm_up,
                                             graph, cutoff))
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)  # a spawned child starts with the parent's environment
        try:
            self.process.start()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        child_end.close()
        self._receive()  # "ready"

    def _receive(self):
        try:
            return self.connection.recv()
        except EOFError:
            raise RuntimeError(f"benchmark worker died (exit code {self.process.exitcode}); "
                               "its error is printed above") from None

    def ask(self, command: str):
        """Send a command, return the worker's answer."""
        self.connection.send(command)
        return self._receive()

    def close(self) -> None:
        if self.process.is_alive():
            try:
                self.connection.send("stop")
            except (BrokenPipeError, OSError):
                pass
            self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.terminate()
        self.connection.close()


def measure_config(orders, hidden, num_batches, repeats, runs=RUNS) -> dict:
    """Interleaved timings (one worker process per run), memory, bound and profile of a config."""
    workers: dict[str, StepWorker] = {}
    try:
        for name, kind, env in runs:
            workers[name] = StepWorker(orders, hidden, kind, num_batches, env)
        times: dict[str, list[float]] = {name: [] for name in workers}
        for _ in range(repeats):
            for name, worker in workers.items():
                times[name].append(worker.ask("time"))
        macs, params = workers["fused"].ask("work")
        profile = workers["fused"].ask("profile")
    finally:
        for worker in workers.values():
            worker.close()
    step = {name: statistics.median(t) for name, t in times.items()}
    memory = {kind: peak_step_memory_mib(orders, hidden, kind) for kind in ("stock", "fused")}
    result = {
        "L": orders, "h": hidden, "params": params,
        "stock": BATCH_SIZE / step["stock"], "fused": BATCH_SIZE / step["fused"],
        "speedup": step["stock"] / step["fused"],
        "gflop": 2 * macs / 1e9,
        "fused_gflops": 2 * macs / step["fused"] / 1e9,
        "memory": memory,
        "profile": profile,
    }
    if "stock_tuned" in step:
        result["stock_tuned"] = BATCH_SIZE / step["stock_tuned"]
        result["speedup_tuned"] = step["stock_tuned"] / step["fused"]
    return result


# message steps timed eager vs torch.compile: (orders, h); edges of a typical batch of 32
COMPILE_CONFIGS = [([0, 1, 2], 32), ([0, 3, 4, 5, 6], 16)]
COMPILE_EDGES, QUICK_COMPILE_EDGES = 1200, 200
COMPILE_REPEATS = 10


def message_step_seconds(module, inputs: list[torch.Tensor],
                         repeats: int = COMPILE_REPEATS) -> float:
    """Best wall seconds of one forward + backward (inputs and parameters) of a message step."""
    cotangent = torch.ones(inputs[0].shape[0], module.irreps_out.dim)
    params = list(module.parameters())
    best = float("inf")
    for _ in range(repeats + 1):  # the first call is a warm-up (and compiles)
        start = time.perf_counter()
        out = module(*inputs)
        torch.autograd.grad(out, [inputs[0], *params], cotangent)
        best = min(best, time.perf_counter() - start)
    return best


def compile_comparison(configs=COMPILE_CONFIGS, num_edges: int = COMPILE_EDGES) -> list[dict]:
    """Hidden-block ``FusedEdgeMessage`` fwd+bwd, eager vs torch.compile (inductor); compile s."""
    from irrepscope.model import ModelConfig
    from irrepscope.model.irreps import hidden_irreps, sh_irreps
    from irrepscope.model.tensor_product import FusedEdgeMessage

    num_basis = ModelConfig().num_basis
    rows = []
    for orders, hidden in configs:
        torch.manual_seed(0)
        irreps, irreps_sh = hidden_irreps(orders, hidden), sh_irreps(orders)
        module = FusedEdgeMessage(irreps, irreps_sh, irreps, num_basis, hidden)
        inputs = [torch.randn(num_edges, irreps.dim, requires_grad=True),
                  torch.randn(num_edges, irreps_sh.dim), torch.randn(num_edges, num_basis)]
        row = {"L": orders, "h": hidden, "eager": message_step_seconds(module, inputs)}
        torch._dynamo.reset()
        compiled = torch.compile(module, fullgraph=True)
        try:
            start = time.perf_counter()
            message_step_seconds(compiled, inputs, repeats=0)
            row["compile_s"] = time.perf_counter() - start
            row["compiled"] = message_step_seconds(compiled, inputs)
        except Exception as error:  # no C++ compiler, inductor bug: report, do not hide
            row["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"
        rows.append(row)
    return rows


def compile_table(rows: list[dict]) -> str:
    """Markdown table of ``compile_comparison`` rows."""
    return markdown_table(
        ["L", "h", "eager ms", "torch.compile ms", "compiled / eager", "first call s"],
        [[f"{r['L']}", r["h"], f"{1e3 * r['eager']:.1f}",
          f"{1e3 * r['compiled']:.1f}" if "compiled" in r else r["error"],
          f"{r['compiled'] / r['eager']:.2f}" if "compiled" in r else "n/a",
          f"{r['compile_s']:.1f}" if "compile_s" in r else "n/a"] for r in rows])


def results_table(results: list[dict]) -> str:
    """Markdown table of measured configurations (floors and bound goal marked met or not)."""
    def mem(value):
        return "n/a" if value is None else f"{value:.0f}"

    def met(ok: bool) -> str:
        return "yes" if ok else "NO"

    rows = [[f"{r['L']}", r["h"], f"{r['params']:,}", f"{r['stock']:.1f}", f"{r['fused']:.1f}",
             f"{r['speedup']:.1f}x", f"{r['floor']:.0f}x ({met(r['speedup'] >= r['floor'])})",
             f"{r['stock_tuned']:.1f}" if "stock_tuned" in r else "n/a",
             f"{r['speedup_tuned']:.1f}x" if "speedup_tuned" in r else "n/a",
             f"{r['gflop']:.1f}",
             f"{100 * r['bound_fraction']:.0f}% ({met(r['bound_fraction'] >= BOUND_GOAL)})",
             mem(r["memory"]["stock"]), mem(r["memory"]["fused"])] for r in results]
    return markdown_table(["L", "h", "params", "stock mol/s", "fused mol/s", "speedup",
                           "floor (met)", "stock, tuned malloc mol/s", "speedup vs tuned",
                           "GFLOP/step", f"fused % of matmul bound (>= {100 * BOUND_GOAL:.0f}%)",
                           "stock peak MiB", "fused peak MiB"], rows)


def run(quick: bool = False, record: Path | None = None, configs=None) -> list[dict]:
    """Measure every configuration; print the table and record it in ``record`` when given."""
    torch.set_num_threads(THREADS)
    num_batches, repeats = (1, 1) if quick else (3, 3)
    rates = [matmul_gflops()]
    results = []
    for orders, hidden, floor in (CONFIGS if configs is None else configs):
        results.append({**measure_config(orders, hidden, num_batches, repeats), "floor": floor})
        rates.append(matmul_gflops())
        r = results[-1]
        print(f"L={orders} h={hidden}: stock {r['stock']:.1f} mol/s (tuned malloc "
              f"{r.get('stock_tuned', float('nan')):.1f}), fused {r['fused']:.1f} mol/s "
              f"({r['speedup']:.1f}x), fused {r['fused_gflops']:.0f} GFLOP/s "
              f"(matmul {rates[-1]:.0f})", flush=True)
    rate = max(rates)  # every fraction against the best matmul rate seen in the run
    for r in results:
        r["bound_fraction"] = r["fused_gflops"] / rate
    profiles = "\n".join(f"- L={r['L']} h={r['h']}: {r['profile']}" for r in results)
    compile_edges = QUICK_COMPILE_EDGES if quick else COMPILE_EDGES
    compiled = compile_comparison(COMPILE_CONFIGS[:1] if quick else COMPILE_CONFIGS,
                                  num_edges=compile_edges)
    body = (f"CPU, {THREADS} threads, batch {BATCH_SIZE}, QM9 bond graphs, {num_batches} batches x "
            f"{repeats} interleaved repeats (median), each build in its own worker process; fp32 "
            f"matmul rate {rate:.0f} GFLOP/s (1024^3, best in run; measured before and after every "
            f"config, it ranged {min(rates):.0f}-{rate:.0f}: a wide range means a busy machine "
            f"and noisy speed-ups). Floors are against the stock "
            f"build with glibc's default allocator; 'tuned malloc' reruns stock with "
            f"{' '.join(f'{k}={v}' for k, v in TUNED_MALLOC.items())} (no page faults from "
            f"its large per-step tensors). GFLOP/step: necessary radial-MLP + tensor-product work "
            f"(forward + backward). Peak MiB: resident memory above the pre-step level during "
            f"a first training step in a fresh process.\n\n{results_table(results)}\n\n"
            f"Where the fused step's time goes (operator self time):\n"
            f"{profiles}\n\n"
            f"What torch.compile (inductor, CPU) adds to one hidden-block message step "
            f"(forward + backward, {compile_edges} edges, best of {COMPILE_REPEATS}):\n\n"
            f"{compile_table(compiled)}\n")
    publish(body, record, "train", quick)
    return results
