"""Extended XYZ out, the mirror of ``data/xyz.py``: molecules of a data set (a run's split, or a
seeded sample) written so that MACE's ``mace_run_train``, nequip's ASE data sets and
``irrepscope analyze --model`` read exactly the molecules irrepscope trains and tests on.

Each frame: atomic numbers and positions (Å, as irrepscope stores them: float32 values), no
periodic boundaries, and in its comment line the energy (eV; atomization energy U0 for QM9)
under ``energy_key`` (default ``REF_energy``, MACE's default key), the molecule's SMILES under
``smiles`` and its index in the source under ``source_index``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from irrepscope.errors import DataError

DEFAULT_ENERGY_KEY = "REF_energy"  # mace_run_train's default --energy_key
SPLITS = ("train", "val", "test")
# Keys the extxyz writer (or ASE's reader) treats specially: an energy stored under them would
# not come back as a plain info entry.
_RESERVED_KEYS = ("smiles", "source_index", "pbc", "Lattice", "Properties")


def select_positions(positions: np.ndarray, molecules: int | None, seed: int) -> np.ndarray:
    """``positions`` (into a data set), or ``molecules`` of them drawn without replacement with
    ``seed`` and kept in their original order."""
    positions = np.asarray(positions, dtype=np.int64)
    if molecules is None:
        return positions
    if not 1 <= molecules <= len(positions):
        raise DataError(f"data export: --molecules must be between 1 and {len(positions)} (the "
                        f"molecules available), got {molecules}")
    pick = np.random.default_rng(seed).choice(len(positions), size=molecules, replace=False)
    return positions[np.sort(pick)]


def molecule_frames(dataset: Any, positions: np.ndarray, energy_key: str) -> list[Any]:
    """``ase.Atoms`` of the molecules at ``positions`` of a ``MoleculeGraphs`` data set."""
    from ase import Atoms

    if energy_key in _RESERVED_KEYS or not energy_key.isidentifier():
        raise DataError(f"--energy-key {energy_key!r} cannot hold the energy; use a plain name "
                        f"such as {DEFAULT_ENERGY_KEY}")
    frames = []
    for position in positions:
        graph = dataset[int(position)]
        atoms = Atoms(numbers=graph.z.numpy(), positions=graph.pos.double().numpy(), pbc=False)
        atoms.info[energy_key] = float(graph.y.reshape(()))
        atoms.info["smiles"] = str(graph.smiles)
        atoms.info["source_index"] = int(graph.idx)
        frames.append(atoms)
    return frames


def write_extxyz(frames: list[Any], out: str | Path) -> Path:
    """Write ``frames`` to ``out`` as extended XYZ, atomically (a partial file never remains)."""
    from ase.io import write

    out = Path(out)
    if out.is_dir():
        raise DataError(f"--out {out} is a folder; give a file name such as {out / 'test.xyz'}")
    if not frames:
        raise DataError(f"no molecules to write to {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        write(str(tmp), frames, format="extxyz")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def export_molecules(dataset: Any, positions: np.ndarray, out: str | Path,
                     molecules: int | None = None, seed: int = 0,
                     energy_key: str = DEFAULT_ENERGY_KEY) -> tuple[Path, int]:
    """(path written, molecules written): ``positions`` of ``dataset`` (all, or a seeded sample
    of ``molecules``) as extended XYZ with their energies (eV) under ``energy_key``."""
    chosen = select_positions(positions, molecules, seed)
    return write_extxyz(molecule_frames(dataset, chosen, energy_key), out), len(chosen)
