"""QM9 from the qm9pack CSV files -> validated flat arrays, with U0 atomization energies in eV.

qm9pack ships 130,831 QM9 molecules (SMILES, element lists, B3LYP geometries in Å, U0 in
Hartree) as ``data/qm9_part{1,2,3}.csv``. ``import qm9pack`` fails on current setuptools, so the
folder is located through ``importlib.util.find_spec`` without importing the package.
"""

from __future__ import annotations

import importlib.util
import os
import re
import warnings
from itertools import compress
from pathlib import Path

import numpy as np

from irrepscope.data.molecules import Problem, RawMolecules, drop_invalid
from irrepscope.errors import DataError

# Paper Table 2: label normalization of the U0 atomization energy over the whole of QM9 (eV).
LABEL_MEAN_EV = -76.116
LABEL_STD_EV = 10.3238
HARTREE_TO_EV = 27.211386246
# Isolated-atom U0 (B3LYP/6-31G(2df,p), Hartree) of QM9's five elements, keyed by Z.
ATOM_REF_HARTREE = {1: -0.500273, 6: -37.846772, 7: -54.583861, 8: -75.064579, 9: -99.718730}
QM9_ELEMENTS = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}
QM9_NUM_MOLECULES = 130_831
QM9_PARTS = 3
QM9_DIR_ENV = "IRREPSCOPE_QM9_DIR"
COLUMNS = ["Index", "SMILES", "N_atoms", "Elements", "XYZ_Ang", "InternalEnergy_0K_au"]
CHARGES_COLUMN = "Mulliken_pop"  # per-atom Mulliken charges (e), optional (data.targets)
_PART = re.compile(r"qm9_part(\d+)\.csv$")


def qm9pack_dir() -> Path | None:
    """The ``data/`` folder of the installed qm9pack (found without importing it), or None."""
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def qm9_source_dir(qm9_dir: str | Path | None = None) -> Path:
    """Folder of ``qm9_part*.csv``: ``qm9_dir``, else $IRREPSCOPE_QM9_DIR, else qm9pack's."""
    chosen = qm9_dir or os.environ.get(QM9_DIR_ENV) or qm9pack_dir()
    if chosen is None:
        raise DataError("qm9pack is not installed (pip install qm9pack) and "
                        f"${QM9_DIR_ENV} is not set: no QM9 source")
    return Path(chosen)


def qm9_source_files(qm9_dir: str | Path | None = None) -> list[Path]:
    """The CSV parts in order; ``DataError`` if the folder, a part, or all parts are missing."""
    folder = qm9_source_dir(qm9_dir)
    if not folder.is_dir():
        raise DataError(f"QM9 source folder {folder} does not exist")
    parts = sorted((int(m.group(1)), p) for p in folder.iterdir()
                   if (m := _PART.match(p.name)))
    if not parts:
        raise DataError(f"no qm9_part*.csv files in {folder}")
    expected = QM9_PARTS if folder == qm9pack_dir() else parts[-1][0]
    missing = sorted(set(range(1, expected + 1)) - {n for n, _ in parts})
    if missing:
        raise DataError(f"{folder} lacks " + ", ".join(f"qm9_part{n}.csv" for n in missing))
    return [p for _, p in parts]


def atomization_energy_ev(z: np.ndarray, counts: np.ndarray, u0_hartree: np.ndarray) -> np.ndarray:
    """(U0 - sum of isolated-atom U0) * 27.211386246: float64 [M] eV, z int [A] in H,C,N,O,F."""
    refs = np.zeros(10)
    for number, energy in ATOM_REF_HARTREE.items():
        refs[number] = energy
    mol = np.repeat(np.arange(len(counts)), counts)
    atom_sum = np.bincount(mol, weights=refs[np.asarray(z)], minlength=len(counts))
    return (np.asarray(u0_hartree, dtype=np.float64) - atom_sum) * HARTREE_TO_EV


def _read_csv(path: Path):  # -> pandas.DataFrame (pandas imported lazily)
    """The needed columns of one part; ``DataError`` on a missing, damaged or truncated file."""
    import pandas as pd

    try:
        header = list(pd.read_csv(path, nrows=0).columns)
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise DataError(f"{path} cannot be read: {err}") from err
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise DataError(f"{path} lacks the column(s) {', '.join(missing)}")
    # The file's last column is read too: a row that has it was not cut short.
    sentinel = header[-1]
    optional = [CHARGES_COLUMN] if CHARGES_COLUMN in header else []
    try:
        df = pd.read_csv(path, usecols=list(dict.fromkeys(COLUMNS + optional + [sentinel])),
                         keep_default_na=False, na_values={"InternalEnergy_0K_au": ["", "nan"]},
                         dtype={"SMILES": str, "Elements": str, "XYZ_Ang": str,
                                CHARGES_COLUMN: str})
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise DataError(f"{path} is truncated or damaged: {err}") from err
    if df.empty:
        raise DataError(f"{path} holds no molecules, only a header: it is truncated")
    cols = [c for c in (COLUMNS[:-1] + [sentinel]) if c != "InternalEnergy_0K_au"]
    incomplete = df[cols].isna().any(axis=1) | df[cols].eq("").any(axis=1)
    if incomplete.any():
        row = int(np.flatnonzero(incomplete.to_numpy())[0])
        raise DataError(f"{path} is truncated or damaged: data row {row + 1} "
                        f"(molecule {df['Index'].iloc[row]}) is incomplete")
    for col in ("Index", "N_atoms"):
        if not pd.api.types.is_integer_dtype(df[col]):
            raise DataError(f"{path} is damaged: column {col} is not all integers")
    return df


def _count_values(strings: list[str], sizes: np.ndarray, what: str,
                  bad: dict[int, str]) -> None:
    """Add to ``bad`` each molecule whose list in column ``what`` lacks ``sizes`` values."""
    import pandas as pd

    found = pd.Series(strings, dtype=object).str.count(",").to_numpy() + 1
    for p in np.flatnonzero(found != sizes):
        bad.setdefault(int(p), f"{what} lists {found[p]} values, N_atoms needs {sizes[p]}")


def _join(strings: list[str], keep: np.ndarray) -> str:
    return ",".join(compress(strings, keep)).replace("[", "").replace("]", "")


def _parse_numbers(strings: list[str], sizes: np.ndarray, bad: dict[int, str]) -> np.ndarray:
    """Flat float64 values of '[[x,y,z],...]' lists of molecules not in ``bad`` (which grows)."""
    keep = np.array([p not in bad for p in range(len(strings))], dtype=bool)
    joined = _join(strings, keep)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            flat = np.fromstring(joined, sep=",") if joined else np.zeros(0)
    except ValueError:  # newer numpy raises where older ones warned and stopped early
        flat = np.zeros(0)
    if len(flat) == int(sizes[keep].sum()) and np.isfinite(flat).all():
        return flat
    before = len(bad)
    for p in np.flatnonzero(keep):  # slow path: find the molecules with bad numbers
        try:
            values = np.array(_join([strings[p]], np.ones(1, bool)).split(","), dtype=float)
        except ValueError:
            bad[int(p)] = "XYZ_Ang contains something that is not a number"
            continue
        if not np.isfinite(values).all():
            bad[int(p)] = "coordinates are NaN or infinite"
    if len(bad) == before:
        raise DataError("XYZ_Ang columns cannot be parsed as numbers (no single molecule at fault)")
    return _parse_numbers(strings, sizes, bad)


def _parse_charges(strings: list[str], sizes: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Flat float64 charges of the kept molecules; NaN for a molecule whose list is unreadable
    or has the wrong length (its charge targets are then invalid, see ``data.targets``)."""
    joined = _join(strings, keep)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            flat = np.fromstring(joined, sep=",") if joined else np.zeros(0)
    except ValueError:
        flat = np.zeros(0)
    if len(flat) == int(sizes[keep].sum()):
        return flat
    parts = []
    for p in np.flatnonzero(keep):  # slow path: NaN for the molecules at fault
        try:
            values = np.array(_join([strings[p]], np.ones(1, bool)).split(","), dtype=float)
        except ValueError:
            values = np.zeros(0)
        parts.append(values if len(values) == sizes[p] else np.full(sizes[p], np.nan))
    return np.concatenate(parts) if parts else np.zeros(0)


def read_qm9(qm9_dir: str | Path | None = None, progress: bool = False) -> RawMolecules:
    """Read and check every molecule of the QM9 CSV parts; labels are atomization energies (eV).

    Per-atom Mulliken charges come from the ``Mulliken_pop`` column when the files have it.

    Per-molecule problems (unknown element, inconsistent atom counts, unparsable or non-finite
    numbers) drop that molecule into ``problems``; file-level problems raise ``DataError``.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    files = qm9_source_files(qm9_dir)
    frames = [_read_csv(p) for p in tqdm(files, desc="reading QM9 CSV", disable=not progress)]
    df = pd.concat(frames, ignore_index=True)
    if files[0].parent == qm9pack_dir() and len(df) != QM9_NUM_MOLECULES:
        raise DataError(f"qm9pack in {files[0].parent} holds {len(df)} molecules, expected "
                        f"{QM9_NUM_MOLECULES:,}: the installation is damaged")
    idx = df["Index"].to_numpy(np.int64)
    sizes = df["N_atoms"].to_numpy(np.int64)
    elements, xyz = df["Elements"].tolist(), df["XYZ_Ang"].tolist()
    u0 = df["InternalEnergy_0K_au"].to_numpy(np.float64)
    bad: dict[int, str] = {int(p): f"N_atoms is {sizes[p]}" for p in np.flatnonzero(sizes < 1)}
    _count_values(elements, sizes, "Elements", bad)
    _count_values(xyz, sizes * 3, "XYZ_Ang", bad)
    for p in np.flatnonzero(~np.isfinite(u0)):
        bad.setdefault(int(p), "U0 (InternalEnergy_0K_au) is missing or not finite")
    coords = _parse_numbers(xyz, sizes * 3, bad)
    keep = np.array([p not in bad for p in range(len(df))], dtype=bool)
    symbols = np.array(_join(elements, keep).replace("'", "").replace('"', "")
                       .replace(" ", "").split(",")) if keep.any() else np.zeros(0, str)
    uniq, inverse = np.unique(symbols, return_inverse=True)
    z = np.array([QM9_ELEMENTS.get(str(s), 0) for s in uniq], dtype=np.int64)[inverse]
    charges = (_parse_charges(df[CHARGES_COLUMN].fillna("").astype(str).tolist(), sizes, keep)
               if CHARGES_COLUMN in df else None)
    raw = RawMolecules(z, coords.reshape(-1, 3), sizes[keep], np.zeros(int(keep.sum())),
                       idx[keep], list(compress(df["SMILES"].tolist(), keep)), charges=charges)
    raw.y = atomization_energy_ev(np.where(raw.z > 0, raw.z, 1), raw.counts, u0[keep])
    raw.problems = [Problem(int(idx[p]), msg) for p, msg in bad.items()]
    mol = np.repeat(np.arange(len(raw)), raw.counts)
    unknown = {int(p): f"unknown element {str(s)!r} (QM9 has H, C, N, O, F)"
               for p, s in zip(mol[z == 0][::-1], symbols[z == 0][::-1], strict=True)}
    out = drop_invalid(raw, unknown)
    out.problems.sort(key=lambda q: q.index)
    return out
