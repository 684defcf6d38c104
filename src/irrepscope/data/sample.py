"""A seeded random sample of QM9 written as qm9pack-format CSV parts (a small, portable data set).

Each CSV line of qm9pack is one molecule. ``write_qm9_sample`` draws ``molecules`` of the
130,831 lines without replacement from ``numpy.random.default_rng(seed)``, keeps them in their
original order and part, and writes ``qm9_part1.csv`` ... with the original header. Point
``data.qm9_dir`` (or ``$IRREPSCOPE_QM9_DIR``) at the folder to train on the sample; the same
(molecules, seed) gives the same bytes on every machine.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np

from irrepscope.data.qm9 import qm9_source_files
from irrepscope.errors import DataError
from irrepscope.files import atomic_output


def copy_qm9_lines(src: Path, dest: Path, keep: Collection[int]) -> None:
    """Copy the header of the CSV part ``src`` and its molecules (lines after the header, from
    0) whose index is in ``keep`` to ``dest``; reading stops after the last one kept."""
    last = max(keep, default=-1)
    with open(src) as fin, atomic_output(dest, "w") as fout:
        fout.write(fin.readline())
        for i, line in enumerate(fin):
            if i > last:
                break
            if i in keep:
                fout.write(line)


def _count_molecules(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f) - 1


def write_qm9_sample(dest: str | Path, molecules: int, seed: int = 0,
                     qm9_dir: str | Path | None = None) -> Path:
    """Write a seeded sample of ``molecules`` QM9 molecules into ``dest``; returns ``dest``."""
    sources = qm9_source_files(qm9_dir)
    counts = [_count_molecules(p) for p in sources]
    total = sum(counts)
    if not 1 <= molecules <= total:
        raise DataError(f"data sample: --molecules must be between 1 and {total} (the molecules "
                        f"in {sources[0].parent}), got {molecules}")
    chosen = np.sort(np.random.default_rng(seed).choice(total, size=molecules, replace=False))
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    start = 0
    for src, count in zip(sources, counts, strict=True):
        keep = set((chosen[(chosen >= start) & (chosen < start + count)] - start).tolist())
        copy_qm9_lines(src, dest / src.name, keep)
        start += count
    return dest
