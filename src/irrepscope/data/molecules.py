"""Flat per-atom arrays of a set of molecules, shared by every reader (QM9 CSV, extended XYZ)."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import compress

import numpy as np

from irrepscope.errors import DataError


@dataclass
class Problem:
    """Why one molecule is invalid; ``graph`` is set when only that graph kind is affected."""

    index: int
    problem: str
    graph: str | None = None

    def as_dict(self) -> dict:
        """JSON-friendly form (cache metadata)."""
        return {"index": self.index, "problem": self.problem, "graph": self.graph}


@dataclass
class RawMolecules:
    """Molecules as flat arrays: molecule m owns atoms ``ptr[m]:ptr[m+1]``.

    z int64 [A] atomic numbers; pos float64 [A, 3] Å; counts int64 [M]; y float64 [M] eV;
    idx int64 [M] molecule index in its source (QM9 index, or XYZ frame number); smiles [M]
    ('' when unknown). ``problems`` lists molecules already dropped while reading. ``charges``
    float64 [A] per-atom Mulliken charges (e; NaN where a molecule has none), or None when the
    source has no charges at all.
    """

    z: np.ndarray
    pos: np.ndarray
    counts: np.ndarray
    y: np.ndarray
    idx: np.ndarray
    smiles: list[str]
    problems: list[Problem] = field(default_factory=list)
    charges: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.z = np.asarray(self.z, dtype=np.int64)
        self.pos = np.asarray(self.pos, dtype=np.float64).reshape(-1, 3)
        self.counts = np.asarray(self.counts, dtype=np.int64)
        self.y = np.asarray(self.y, dtype=np.float64)
        self.idx = np.asarray(self.idx, dtype=np.int64)
        m = len(self.counts)
        if not (len(self.y) == len(self.idx) == len(self.smiles) == m):
            raise ValueError("counts, y, idx and smiles must have one entry per molecule")
        if int(self.counts.sum()) != len(self.z) or len(self.z) != len(self.pos):
            raise ValueError("z and pos must have sum(counts) rows")
        if self.charges is not None:
            self.charges = np.asarray(self.charges, dtype=np.float64)
            if len(self.charges) != len(self.z):
                raise ValueError("charges must have sum(counts) entries")

    @property
    def ptr(self) -> np.ndarray:
        """int64 [M + 1] offsets of each molecule's first atom."""
        return np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.counts)

    def select(self, keep: np.ndarray) -> RawMolecules:
        """The molecules where boolean ``keep`` [M] is true (problems carried over)."""
        atom_keep = np.repeat(keep, self.counts)
        return RawMolecules(self.z[atom_keep], self.pos[atom_keep], self.counts[keep],
                            self.y[keep], self.idx[keep],
                            list(compress(self.smiles, keep)), list(self.problems),
                            None if self.charges is None else self.charges[atom_keep])


def drop_invalid(raw: RawMolecules, bad: dict[int, str]) -> RawMolecules:
    """Drop molecules at positions ``bad`` (position -> problem), recording each problem."""
    if not bad:
        return raw
    keep = np.ones(len(raw), dtype=bool)
    keep[list(bad)] = False
    out = raw.select(keep)
    out.problems += [Problem(int(raw.idx[p]), msg) for p, msg in sorted(bad.items())]
    return out


def check_problems(problems: list[Problem], skip_invalid: bool, source: str,
                   flag: str = "data.skip_invalid: true", item: str = "molecule") -> None:
    """Raise one ``DataError`` naming the first invalid molecule unless skipping is allowed
    (``flag``: the setting that allows it; ``item``: what an index counts, e.g. "frame")."""
    if problems and not skip_invalid:
        first = problems[0]
        more = f" ({len(problems)} invalid {item}s in all)" if len(problems) > 1 else ""
        raise DataError(f"{source}: {item} {first.index}: {first.problem}{more}; fix the "
                        f"input or set {flag} to skip invalid {item}s")
