"""Normalized spacial score (NSPS, paper A.4) of molecules from their SMILES, via RDKit.

The score is ``rdkit.Chem.SpacialScore.SPS(mol, normalize=True)`` of the *sanitized* molecule
parsed from SMILES with hydrogens implicit (as the score's authors define it); a molecule RDKit
cannot parse or score gets NaN and is counted, never dropped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from rdkit import Chem, RDLogger
from rdkit.Chem import SpacialScore
from tqdm.auto import tqdm


@dataclass
class NSPSScores:
    """values [n] float64 (NaN where unscorable) and the unscorable SMILES with their reason."""

    values: np.ndarray
    unscorable: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def num_unscorable(self) -> int:
        """How many molecules RDKit could not score (NaN in ``values``)."""
        return len(self.unscorable)


def nsps(smiles: str) -> float:
    """NSPS of one molecule from SMILES (sanitized, implicit hydrogens); NaN if unscorable."""
    value, _ = _score(smiles)
    return value


def _score(smiles: str) -> tuple[float, str]:
    RDLogger.DisableLog("rdApp.*")
    try:
        mol = Chem.MolFromSmiles(smiles, sanitize=True) if smiles else None
        if mol is None:
            return math.nan, "RDKit cannot parse or sanitize the SMILES"
        mol = Chem.RemoveHs(mol)
        if mol.GetNumHeavyAtoms() == 0:
            return math.nan, "no heavy atoms"
        return float(SpacialScore.SPS(mol, normalize=True)), ""
    except Exception as err:  # RDKit raises several types (e.g. ZeroDivisionError, RuntimeError)
        return math.nan, f"{type(err).__name__}: {err}"
    finally:
        RDLogger.EnableLog("rdApp.*")


def nsps_scores(smiles: Sequence[str], progress: bool = True) -> NSPSScores:
    """NSPS of every SMILES, [n] float64, with the unscorable ones (index, SMILES, reason)."""
    values = np.full(len(smiles), np.nan)
    bad: list[tuple[int, str, str]] = []
    for i, s in enumerate(tqdm(smiles, desc="NSPS", disable=not progress, leave=False)):
        values[i], reason = _score(s)
        if reason:
            bad.append((i, s, reason))
    return NSPSScores(values, bad)
