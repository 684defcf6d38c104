"""``irrepscope bench sph``: spherical-harmonics throughput vs e3nn (and sphericart, Triton).

Float32, forward and forward+backward (random cotangent), the order sets of ``SETS``, interleaved
repeats, medians. The bound column is the fraction of a memory-bandwidth bound measured in the same
run (a large tensor copy): forward must read 3 and write D = sum(2l+1) floats per vector;
forward+backward also reads the D cotangents and the 3 inputs again and writes 3 gradients.
CPU runs use one torch thread (single-threaded reference numbers).
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm import tqdm

from irrepscope.bench.record import markdown_table, publish
from irrepscope.errors import IrrepscopeError

SETS = {"[0,1,2]": [0, 1, 2], "[0..6]": list(range(7)), "[0..10]": list(range(11)),
        "[0,3,4,5,6]": [0, 3, 4, 5, 6], "[10]": [10]}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bandwidth(device: torch.device, numel: int = 1 << 25, repeats: int = 5) -> float:
    """Copy bandwidth in bytes/s (read + write counted) of a float32 tensor on ``device``."""
    src = torch.rand(numel, device=device)
    dst = torch.empty_like(src)
    times = []
    for _ in range(repeats + 1):
        _sync(device)
        t0 = time.perf_counter()
        dst.copy_(src)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return 2 * 4 * numel / statistics.median(times[1:])


def _implementations(ls: list[int], device: torch.device,
                     compiled: bool = True) -> dict[str, Callable]:
    from e3nn import o3

    from irrepscope.sph.api import backend_info, spherical_harmonics

    def ours(v: torch.Tensor) -> torch.Tensor:
        return spherical_harmonics(ls, v, backend="torch")

    def e3nn(v: torch.Tensor) -> torch.Tensor:
        return o3.spherical_harmonics(ls, v, True)

    impls: dict[str, Callable] = {"irrepscope torch": ours, "e3nn": e3nn}
    if compiled:
        impls["irrepscope torch (compiled)"] = torch.compile(ours)
        impls["e3nn (compiled)"] = torch.compile(e3nn)
    if device.type == "cuda" and backend_info()["backends"].get("triton"):
        from irrepscope.sph import triton_backend

        impls["irrepscope triton"] = lambda v: spherical_harmonics(ls, v, backend="triton")
        other = not triton_backend.ROW_TILES  # the store strategy not taken by default
        impls[f"irrepscope triton ({'row tile' if other else 'column'} stores)"] = (
            _with_row_tiles(impls["irrepscope triton"], triton_backend, other))
    if importlib.util.find_spec("sphericart") is not None:
        import sphericart.torch

        sc = sphericart.torch.SphericalHarmonics(max(ls))  # always computes 0..l_max
        impls["sphericart (0..l_max)"] = lambda v: sc.compute(v)
    if device.type == "cuda" and importlib.util.find_spec("cuequivariance_torch") is not None:
        import cuequivariance_torch

        impls["cuequivariance"] = lambda v: cuequivariance_torch.spherical_harmonics(ls, v, True)
    return impls


def _with_row_tiles(fn: Callable, triton_backend, row_tiles: bool) -> Callable:
    """``fn`` with the Triton forward's store strategy set to ``row_tiles`` for the call."""
    def with_strategy(v: torch.Tensor) -> torch.Tensor:
        saved, triton_backend.ROW_TILES = triton_backend.ROW_TILES, row_tiles
        try:
            return fn(v)
        finally:
            triton_backend.ROW_TILES = saved
    return with_strategy


def _step(fn: Callable, v: torch.Tensor, cot: torch.Tensor | None) -> None:
    if cot is None:
        with torch.no_grad():
            fn(v)
        return
    out = fn(v)
    torch.autograd.grad(out, v, cot[..., : out.shape[-1]])


def measure(n: int, ls: list[int], backward: bool, repeats: int, device: torch.device,
            compiled: bool = True) -> dict[str, float | None]:
    """Median seconds per call of each implementation (None when it failed to run)."""
    # a fresh Dynamo cache: the wrapped functions share code objects across order sets, and past
    # torch's recompile limit a compiled function silently falls back to eager
    torch._dynamo.reset()
    g = torch.Generator(device=device).manual_seed(0)
    v = torch.randn(n, 3, device=device, generator=g).requires_grad_(backward)
    width = max(sum(2 * l + 1 for l in ls), (max(ls) + 1) ** 2)
    cot = torch.randn(n, width, device=device, generator=g) if backward else None
    impls = _implementations(ls, device, compiled)
    times: dict[str, list[float]] = {name: [] for name in impls}
    for name, fn in list(impls.items()):  # warm up (and compile); drop what cannot run
        try:
            _step(fn, v, cot)
        except Exception as err:  # noqa: BLE001 - a failing competitor is reported, not fatal
            print(f"  {name} skipped: {type(err).__name__}: {str(err).splitlines()[0][:100]}")
            impls.pop(name)
    for _ in range(repeats):  # interleaved
        for name, fn in impls.items():
            _sync(device)
            t0 = time.perf_counter()
            _step(fn, v, cot)
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return {name: (statistics.median(t) if t else None) for name, t in times.items()}


def default_sizes(device: torch.device, quick: bool) -> list[int]:
    """Numbers of vectors measured by default: 2^16..2^24 on a GPU, 2^17 and 2^20 on a CPU."""
    if device.type == "cuda":
        return [1 << 16] if quick else [1 << k for k in (16, 18, 20, 22, 24)]
    return [1 << 12] if quick else [1 << 17, 1 << 20]


def _options_text(sizes: list[int] | None, sets: list[str] | None, compiled: bool | None) -> str:
    """The command-line options that reproduce a run with these choices."""
    parts = []
    if sizes:
        parts.append("--sizes " + ",".join(str(n.bit_length() - 1) for n in sizes))
    if sets:
        parts.append("--orders " + " ".join(f"'{key}'" for key in sets))
    if compiled is False:
        parts.append("--no-compile")
    return " ".join(parts)


def run(quick: bool, record: Path | None, sizes: list[int] | None = None,
        sets: list[str] | None = None, compiled: bool | None = None) -> list[list[object]]:
    """Measure every (N, order set, mode, implementation); record the table when ``record``.

    ``quick``: N = 2^12 (2^16 on a GPU), 2 repeats, no torch.compile columns (a smoke run).
    ``sizes`` (numbers of vectors), ``sets`` (keys of ``SETS``) and ``compiled`` (torch.compile
    columns) replace the defaults. A GPU run is recorded in its own section, ``sph-gpu``.
    """
    unknown = [key for key in sets or [] if key not in SETS]
    if unknown:
        raise IrrepscopeError(f"bench sph: unknown order set(s) {', '.join(unknown)}; "
                              f"choose from {', '.join(SETS)}")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        options = _options_text(sizes, sets, compiled)
        sizes = sizes or default_sizes(device, quick)
        compiled = (not quick) if compiled is None else compiled
        repeats = 2 if quick else 5
        bw = bandwidth(device, numel=1 << 20 if quick else 1 << 25)
        rows: list[list[object]] = []
        header = ["N", "orders", "mode", "implementation", "median ms", "M vectors/s",
                  "speed-up vs e3nn", "fraction of bandwidth bound"]
        where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu, 1 thread"
        note = (f"float32 on {where}; measured copy bandwidth {bw / 1e9:.1f} GB/s (the bound's "
                f"denominator); {repeats} interleaved repeats, medians; compiled = torch.compile "
                f"(default inductor; {'measured' if compiled else 'not measured in this run'}); "
                "sphericart always computes 0..l_max; e3nn computes 0..max(L) for any L.")
        if device.type == "cuda":
            import triton

            note += f" triton {triton.__version__}."
        jobs = [(n, key, bwd) for n in sizes for key in (sets or SETS) for bwd in (False, True)]
        for job, (n, key, bwd) in enumerate(tqdm(jobs, desc="bench sph")):
            ls = SETS[key]
            dim = sum(2 * l + 1 for l in ls)
            bound = n * 4 * ((dim + 3) + ((dim + 6) if bwd else 0)) / bw
            result = measure(n, ls, bwd, repeats, device, compiled=compiled)
            base = result.get("e3nn")
            for name, t in result.items():
                if t is None:
                    continue
                rows.append([f"2^{n.bit_length() - 1}", key, "fwd+bwd" if bwd else "fwd", name,
                             f"{t * 1e3:.3f}", f"{n / t / 1e6:.2f}",
                             f"{base / t:.2f}" if base else "n/a", f"{bound / t:.3f}"])
            # recorded job by job: a run cut short keeps what it measured
            # (inside: the machine line names the thread count measured with)
            publish(note + "\n\n" + markdown_table(header, rows), record, "sph", quick,
                    options=options, section="sph-gpu" if device.type == "cuda" else None,
                    echo=job == len(jobs) - 1)
    finally:
        torch.set_num_threads(threads)
    return rows
