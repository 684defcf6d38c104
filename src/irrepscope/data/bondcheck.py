"""Perceived bonds against each molecule's SMILES (RDKit, hydrogens counted).

The xyz atom order is not the SMILES atom order, so the two bond graphs are compared through an
order-free invariant: the sorted list of heavy-atom environments
``(Z, heavy neighbours, hydrogens)`` plus "every hydrogen has exactly one heavy neighbour". A
molecule whose geometry gains, loses or moves a bond changes at least two environments, so this
catches every one-bond disagreement; two different graphs with identical environment lists would
pass unnoticed, which does not happen for a single-bond change.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

MAX_ATOMS = 32  # padding width of the per-molecule environment arrays
_SENTINEL = np.iinfo(np.int64).max
_SYMBOL = {1: "H", 6: "C", 7: "N", 8: "O", 9: "F"}


def environment_code(z: np.ndarray, heavy: np.ndarray, hydrogens: np.ndarray) -> np.ndarray:
    """int64 code of an atom environment: Z * 10000 + heavy neighbours * 100 + hydrogens."""
    return np.asarray(z, np.int64) * 10000 + np.asarray(heavy) * 100 + np.asarray(hydrogens)


def describe(code: int) -> str:
    """'C(2 heavy, 2 H)' for an environment code."""
    z, heavy, h = code // 10000, code // 100 % 100, code % 100
    return f"{_SYMBOL.get(z, f'Z{z}')}({heavy} heavy, {h} H)"


def smiles_environments(smiles: list[str], progress: bool = False
                        ) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Sorted heavy-atom environment codes of each SMILES, padded: (int64 [M, MAX_ATOMS],
    SMILES bond counts with hydrogens int64 [M], positions of unparsable SMILES)."""
    from rdkit import Chem, RDLogger
    from tqdm.auto import tqdm

    RDLogger.DisableLog("rdApp.*")
    codes = np.full((len(smiles), MAX_ATOMS), _SENTINEL, dtype=np.int64)
    bonds = np.zeros(len(smiles), dtype=np.int64)
    unparsable: list[int] = []
    for m, text in enumerate(tqdm(smiles, desc="checking bonds against SMILES",
                                  disable=not progress, mininterval=1.0)):
        mol = Chem.MolFromSmiles(text) if text else None
        if mol is None:
            unparsable.append(m)
            continue
        row = []
        heavy_total = hydrogen_total = 0
        for atom in mol.GetAtoms():
            z = atom.GetAtomicNum()
            if z == 1:  # explicit hydrogens are counted on their neighbour
                continue
            heavy = sum(1 for nb in atom.GetNeighbors() if nb.GetAtomicNum() != 1)
            h = atom.GetTotalNumHs(includeNeighbors=True)
            row.append(z * 10000 + heavy * 100 + h)
            heavy_total += heavy
            hydrogen_total += h
        row.sort()
        codes[m, :len(row)] = row[:MAX_ATOMS]
        bonds[m] = heavy_total // 2 + hydrogen_total
    return codes, bonds, unparsable


def geometry_environments(z: np.ndarray, adj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted heavy-atom environment codes of [m, n] molecules with bool adjacency [m, n, n]:
    (int64 [m, MAX_ATOMS] padded, bool [m] 'a hydrogen has not exactly one heavy neighbour')."""
    is_h = z == 1
    return _environments(z, (adj & ~is_h[:, None, :]).sum(-1), (adj & is_h[:, None, :]).sum(-1))


def edge_environments(z: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``geometry_environments`` of one molecule (z [n]) given as edges [2, E] (both
    directions): (int64 [MAX_ATOMS], bool); memory O(n + E)."""
    n = len(z)
    src, dst = edges
    heavy_nb = np.bincount(src, weights=z[dst] != 1, minlength=n).astype(np.int64)
    h_nb = np.bincount(src, weights=z[dst] == 1, minlength=n).astype(np.int64)
    codes, odd_h = _environments(z[None], heavy_nb[None], h_nb[None])
    return codes[0], odd_h[0]


def _environments(z: np.ndarray, heavy_nb: np.ndarray, h_nb: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Codes and odd-hydrogen flags of [m, n] molecules from each atom's neighbour counts."""
    is_h = z == 1
    code = np.where(is_h, _SENTINEL, environment_code(z, heavy_nb, h_nb))
    code.sort(axis=1)
    out = np.full((len(z), MAX_ATOMS), _SENTINEL, dtype=np.int64)
    width = min(code.shape[1], MAX_ATOMS)
    out[:, :width] = code[:, :width]
    odd_h = (is_h & ((heavy_nb != 1) | (h_nb != 0))).any(axis=1)
    return out, odd_h


def explain(geometry_codes: np.ndarray, smiles_codes: np.ndarray) -> str:
    """Human-readable difference of two environment rows, e.g. 'geometry has C(3 heavy, 1 H)
    where the SMILES has C(2 heavy, 1 H)'."""
    geo = Counter(int(c) for c in geometry_codes if c != _SENTINEL)
    smi = Counter(int(c) for c in smiles_codes if c != _SENTINEL)
    only_geo = ", ".join(describe(c) for c in sorted((geo - smi).elements()))
    only_smi = ", ".join(describe(c) for c in sorted((smi - geo).elements()))
    if not only_geo and not only_smi:
        return "a hydrogen is bonded to other than exactly one heavy atom"
    return f"geometry has {only_geo or 'nothing extra'} where the SMILES has {only_smi or '-'}"
