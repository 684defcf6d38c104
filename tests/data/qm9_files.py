"""Helpers of the data tests: QM9-format CSV rows and files written by the tests themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HEADER = ["XYZ_file", "Index", "SMILES", "InChi", "N_atoms", "Stoichiometry", "Elements",
          "XYZ_Ang", "InternalEnergy_0K_au", "Heatcapacity_Cv_cal_mol_K"]

# Three small valid molecules (B3LYP geometries from QM9: methane, ammonia, water).
METHANE = ("C", ["C", "H", "H", "H", "H"],
           [[-0.0126981359, 1.0858041578, 0.0080009958], [0.002150416, -0.0060313176, 0.0019761204],
            [1.0117308433, 1.4637511618, 0.0002765748], [-0.540815069, 1.4475266138, -0.8766437152],
            [-0.5238136345, 1.4379326443, 0.9063972942]], -40.47893)
AMMONIA = ("N", ["N", "H", "H", "H"],
           [[-0.0404260543, 1.0241077531, 0.0625637998],
            [0.0172574639, 0.0125452063, -0.0273771593],
            [0.9157893661, 1.3587451948, -0.0287577581],
            [-0.5202777357, 1.3435321258, -0.7755426124]],
           -56.525887)
WATER = ("O", ["O", "H", "H"],
         [[-0.0343604951, 0.9775395708, 0.0076015923], [0.0647664923, 0.0205721989, 0.0015346341],
          [0.8717903737, 1.3007924048, 0.0006931336]], -76.404702)


def row(index: int, smiles: str, elements: list[str], xyz, u0: float) -> dict:
    """One CSV row in qm9pack's format (lists written as qm9pack writes them)."""
    return {"XYZ_file": f"dsgdb9nsd_{index:06d}.xyz", "Index": index, "SMILES": smiles,
            "InChi": "", "N_atoms": len(elements), "Stoichiometry": "[]",
            "Elements": "[" + ",".join(f"'{e}'" for e in elements) + "]",
            "XYZ_Ang": "[" + ",".join("[" + ",".join(str(v) for v in p) + "]" for p in xyz) + "]",
            "InternalEnergy_0K_au": u0, "Heatcapacity_Cv_cal_mol_K": 6.0}


def write_part(path: Path, rows: list[dict]) -> Path:
    """Write ``rows`` as a qm9_part CSV."""
    pd.DataFrame(rows, columns=HEADER).to_csv(path, index=False)
    return path


def basic_rows() -> list[dict]:
    """Methane, ammonia, water as QM9 molecules 1, 2, 3."""
    return [row(i + 1, *mol) for i, mol in enumerate((METHANE, AMMONIA, WATER))]


def random_molecule(rng: np.random.Generator, n: int) -> np.ndarray:
    """[n, 3] positions (Å) spread over a few Å, no two atoms closer than 0.5 Å."""
    while True:
        pos = rng.uniform(-3.0, 3.0, size=(n, 3))
        d = np.linalg.norm(pos[:, None] - pos[None], axis=-1) + 10 * np.eye(n)
        if d.min() > 0.5:
            return pos
