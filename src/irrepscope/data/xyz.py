"""User data sets: extended-XYZ files read through ASE, labels taken as given (eV).

Each frame is one molecule; its label is ``atoms.info[energy_key]`` (ASE moves the key
``energy`` of an extxyz comment line into the attached calculator's results, which is read as
well). Molecules go through the same validation and graphs as QM9; there is no SMILES check.
Per-atom charges (e), for the charge-derived targets of ``data.targets``, come from a per-atom
``charges`` column (ASE moves it into the calculator's results, read as well); a file where no
frame has one has no charges.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from irrepscope.data.molecules import Problem, RawMolecules
from irrepscope.errors import DataError


def frame_energy(atoms, key: str) -> float | None:
    """The energy of one ``ase.Atoms`` under ``key`` (info or attached results); None if absent."""
    if key in atoms.info:
        value = atoms.info[key]
    elif atoms.calc is not None and key in getattr(atoms.calc, "results", {}):
        value = atoms.calc.results[key]
    else:
        return None
    try:
        return float(np.asarray(value).reshape(()))
    except (TypeError, ValueError):
        return float("nan")


def frame_charges(atoms) -> np.ndarray | None:
    """Per-atom charges [n] (e) of one ``ase.Atoms``, or None when the frame has none."""
    if "charges" in atoms.arrays:
        return np.asarray(atoms.arrays["charges"], dtype=np.float64).reshape(-1)
    if atoms.calc is not None and "charges" in getattr(atoms.calc, "results", {}):
        return np.asarray(atoms.calc.results["charges"], dtype=np.float64).reshape(-1)
    return None


def read_atoms(path: str | Path) -> list:
    """Every frame of an extended-XYZ file as ``ase.Atoms``; one ``DataError`` naming the file
    (and the frame) if it is missing, unreadable or empty."""
    from ase.io import iread

    path = Path(path)
    if not path.is_file():
        raise DataError(f"extended-XYZ file {path} does not exist")
    frames = []
    try:
        for atoms in iread(str(path), index=":", format="extxyz"):
            frames.append(atoms)
    except Exception as err:  # ASE raises many types for bad files; name the frame
        raise DataError(f"{path}: frame {len(frames)} cannot be read ({type(err).__name__}: "
                        f"{err}); unknown element symbols and malformed lines end up here") from err
    if not frames:
        raise DataError(f"{path} holds no frames")
    return frames


def read_xyz(path: str | Path, energy_key: str = "energy") -> RawMolecules:
    """All frames of an extended-XYZ file; ``DataError`` if it cannot be read.

    Frames without the energy, or with atomic number 0 (unknown 'X'), are dropped into
    ``problems`` (index = frame number, from 0).
    """
    frames = read_atoms(path)
    zs, positions, counts, energies, kept, problems = [], [], [], [], [], []
    charges: list[np.ndarray | None] = []
    for i, atoms in enumerate(frames):
        numbers = atoms.get_atomic_numbers()
        energy = frame_energy(atoms, energy_key)
        if energy is None:
            problems.append(Problem(i, f"has no energy under the key {energy_key!r}"))
        elif len(numbers) == 0:
            problems.append(Problem(i, "has no atoms"))
        elif (numbers < 1).any():
            problems.append(Problem(i, "contains an unknown element (atomic number 0)"))
        else:
            zs.append(numbers)
            positions.append(atoms.get_positions())
            counts.append(len(numbers))
            energies.append(energy)
            kept.append(i)
            charges.append(frame_charges(atoms))
    raw = RawMolecules(np.concatenate(zs) if zs else np.zeros(0),
                       np.concatenate(positions) if positions else np.zeros((0, 3)),
                       counts, energies, kept, [""] * len(kept))
    if any(q is not None for q in charges):  # frames without (or with too few) charges: NaN
        raw.charges = np.concatenate([q if q is not None and len(q) == n else np.full(n, np.nan)
                                      for q, n in zip(charges, counts, strict=True)])
    raw.problems = problems
    return raw
