"""Benchmark of the geometry step on one large molecule: 10^3 to 10^5 atoms.

The molecule is a cluster of water molecules (O-H 0.96 Å, 104.5°, random orientations) on a
cubic grid 3.1 Å apart, about liquid water's density (0.1 atoms/Å³), so a 6 Å radius holds about
90 neighbours per atom. Each size is measured in a fresh process (``python -m
irrepscope.bench.geometry N``): the wall time and the peak resident memory of
``data.process.process`` (validation, closest pair, bonds, radius-graph count at 6 Å and bond
environments: what ``irrepscope data info --xyz`` and ``predict`` run on a molecule) and of
``graphs.bond_edges`` and ``graphs.radius_edges`` (the graphs ``predict`` builds).
"""

from __future__ import annotations

import contextlib
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

WATER_SPACING = 3.1  # Å between water molecules on the grid
CUTOFF = 6.0  # Å, the radius graph's default


def water_cluster(num_atoms: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(z int64 [N], pos float64 [N, 3] Å) of ``num_atoms // 3`` water molecules on a grid."""
    count = num_atoms // 3
    side = math.ceil(count ** (1 / 3))
    grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)
    centres = grid[:count] * WATER_SPACING
    half = math.radians(104.5) / 2
    local = 0.96 * np.array([[0, 0, 0], [math.sin(half), math.cos(half), 0],
                             [-math.sin(half), math.cos(half), 0]])
    from scipy.spatial.transform import Rotation

    turns = Rotation.random(count, random_state=seed).as_matrix()  # [count, 3, 3]
    pos = centres[:, None, :] + np.einsum("mij,aj->mai", turns, local)
    z = np.tile([8, 1, 1], count)
    return z.astype(np.int64), pos.reshape(-1, 3)


def _memory_mib(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak since the last ``_reset_peak``) in MiB, from
    /proc/self/status (Linux; ``ru_maxrss``, which survives exec and fork, elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak() -> None:
    """Set the peak (VmHWM) to the memory resident now (Linux >= 4.0)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def measure(num_atoms: int, dense: bool = False) -> dict[str, float]:
    """Time (s) and peak-memory increase (MiB) of the geometry step and of both graphs;
    ``dense``: every pair at once whatever the size (the way before ``graphs.close_pairs``)."""
    import torch

    from irrepscope.data import graphs
    from irrepscope.data import process as processing
    from irrepscope.data.graphs import bond_edges, radius_edges
    from irrepscope.data.molecules import RawMolecules
    from irrepscope.data.process import process

    if dense:
        graphs.DENSE_MAX_ATOMS = processing.DENSE_MAX_ATOMS = num_atoms

    z, pos = water_cluster(num_atoms)
    raw = RawMolecules(z, pos, [len(z)], np.zeros(1), np.arange(1), [""])
    out: dict[str, float] = {"atoms": float(len(z))}
    for name, step in (
            ("process", lambda: process(raw, CUTOFF, progress=False)),
            ("bond_edges", lambda: bond_edges(z, pos)),
            ("radius_edges", lambda: radius_edges(torch.from_numpy(pos), CUTOFF))):
        _reset_peak()
        before = _memory_mib("VmRSS")
        start = time.perf_counter()
        result = step()
        out[f"{name}_s"] = time.perf_counter() - start
        out[f"{name}_mib"] = max(0.0, _memory_mib("VmHWM") - before)
        if name == "process":
            out["bonds"] = float(result["bond_ptr"][-1])
            out["radius_edges"] = float(result["radius_count"][0])
        del result
    out["rss_mib"] = _memory_mib("VmRSS")  # the interpreter, torch, numpy, the molecule
    return out


def measure_in_subprocess(num_atoms: int, dense: bool = False) -> dict[str, float]:
    """``measure(num_atoms, dense)`` in a fresh Python process (its own peak memory)."""
    done = subprocess.run([sys.executable, "-m", "irrepscope.bench.geometry", str(num_atoms),
                           *(["--dense"] if dense else [])],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def scaling_table(sizes: tuple[int, ...], dense_sizes: tuple[int, ...] = ()) -> str:
    """Markdown table of ``measure`` at each size (k-d tree), and at ``dense_sizes`` the way
    before it (all pairs), each in its own process."""
    from irrepscope.bench.record import markdown_table

    rows = []
    for dense, size in [(True, n) for n in dense_sizes] + [(False, n) for n in sizes]:
        m = measure_in_subprocess(size, dense)
        rows.append([f"{int(m['atoms']):,}", "all pairs (before)" if dense else "k-d tree",
                     f"{m['process_s']:.2f} s", f"{m['process_mib']:,.0f} MiB",
                     f"{m['bond_edges_s']:.3f} s", f"{m['radius_edges_s']:.2f} s",
                     f"{m['radius_edges_mib']:,.0f} MiB", f"{int(m['radius_edges']):,}",
                     f"{m['rss_mib']:,.0f} MiB"])
    return markdown_table(["atoms", "neighbour search", "geometry step: time",
                           "peak memory", "bond graph: time", "radius graph (6 Å): time",
                           "peak memory", "radius edges", "process RSS at the end"], rows)


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]), dense="--dense" in sys.argv)))
