"""Benchmark of the data pipeline: first processing of QM9, cache load, item access, and the
geometry step of one large molecule (``bench.geometry``: 10^3 to 10^5 atoms).

Targets: first full processing (parse, validate, both graph kinds at one cutoff, SMILES
check) <= 90 s on a 2-core machine; loading the cache <= 3 s; 100,000 atoms within a few GB.
``quick`` runs the same steps on the first 2,000 molecules of each CSV part, and molecules up
to 10,000 atoms.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from irrepscope.bench.geometry import scaling_table
from irrepscope.bench.record import (
    load_average,
    load_note,
    markdown_table,
    median_time,
    publish,
)
from irrepscope.data.dataset import load_dataset
from irrepscope.data.qm9 import qm9_source_files
from irrepscope.data.sample import copy_qm9_lines

QUICK_ROWS = 2000
ITEMS = 2000
LARGE_MOLECULES = (1_000, 10_000, 100_000)  # atoms, k-d tree neighbour search
ALL_PAIRS = (1_000, 4_000)  # atoms, the all-pairs search it replaced (24 N² bytes)


def write_qm9_slice(dest: Path, rows: int) -> Path:
    """Copy the header and first ``rows`` molecules of every QM9 part into ``dest``."""
    for src in qm9_source_files():
        copy_qm9_lines(src, dest / src.name, range(rows))
    return dest


def _items_per_second(dataset, count: int) -> float:
    n = min(count, len(dataset))
    start = time.perf_counter()
    for i in range(n):
        dataset[i]
    return n / (time.perf_counter() - start)


def run(quick: bool = False, record: Path | None = None) -> str:
    """Measure, print and (with ``record``) write the 'data' section; returns the table."""
    with tempfile.TemporaryDirectory(prefix="irrepscope-bench-data-") as tmp:
        tmp = Path(tmp)
        qm9_dir = None
        if quick:
            qm9_dir = tmp / "src"
            qm9_dir.mkdir()
            write_qm9_slice(qm9_dir, QUICK_ROWS)
        data_dir = tmp / "cache"
        start = time.perf_counter()
        bonds = load_dataset(graph="bonds", data_dir=data_dir, qm9_dir=qm9_dir, progress=True)
        first = time.perf_counter() - start
        load = median_time(lambda: load_dataset(graph="bonds", data_dir=data_dir,
                                                qm9_dir=qm9_dir, progress=False), repeats=3)
        radius = load_dataset(graph="radius", data_dir=data_dir, qm9_dir=qm9_dir,
                              progress=False)
        rows = [
            ["first processing (read, validate, both graphs, SMILES check)", f"{first:.1f} s",
             "<= 90 s (full QM9)"],
            ["cache load (median of 3)", f"{load:.2f} s", "<= 3 s (full QM9)"],
            ["cache file size", f"{bonds.cache_path.stat().st_size / 2**20:.1f} MiB", ""],
            ["item access, bonds graph", f"{_items_per_second(bonds, ITEMS):,.0f} /s", ""],
            ["item access, radius graph (6 Å, built per item)",
             f"{_items_per_second(radius, ITEMS):,.0f} /s", ""],
        ]
        disagreements = len(bonds.metadata["bond_disagreements"])
    start = load_average()
    sizes = LARGE_MOLECULES[:2] if quick else LARGE_MOLECULES
    large = scaling_table(sizes, ALL_PAIRS[:1] if quick else ALL_PAIRS)
    body = (f"{len(bonds):,} molecules; {disagreements:,} with geometry bonds that disagree "
            f"with their SMILES.\n\n" + markdown_table(["step", "measured", "target"], rows)
            + "\n\nOne large molecule (a water cluster, 0.1 atoms/Å³; `irrepscope.bench.geometry`"
            ", one process per row): the geometry step of `data info --xyz` and `predict` "
            "(validation, closest pair, bonds, radius-graph count at 6 Å, bond environments), "
            "its peak memory above the process's before it, and the graphs `predict` builds. "
            f"{load_note(start, load_average())}\n\n" + large)
    publish(body, record, "data", quick)
    return body
