"""The order-free bond check against an exact graph comparison through canonical SMILES."""

from __future__ import annotations

import numpy as np
from rdkit import Chem

from irrepscope.data.bondcheck import describe, explain, smiles_environments
from irrepscope.data.process import process
from irrepscope.data.qm9 import read_qm9


def _skeleton(mol: Chem.Mol) -> str:
    """Canonical SMILES of the bare graph: all bonds single, no charges, hydrogens as atoms."""
    rw = Chem.RWMol(mol)
    for bond in rw.GetBonds():
        bond.SetBondType(Chem.BondType.SINGLE)
        bond.SetIsAromatic(False)
    for atom in rw.GetAtoms():
        atom.SetFormalCharge(0)
        atom.SetIsAromatic(False)
        atom.SetNoImplicit(True)
        atom.SetNumExplicitHs(0)
    return Chem.MolToSmiles(rw, isomericSmiles=False)


def _geometry_mol(z: np.ndarray, edges: np.ndarray) -> Chem.Mol:
    rw = Chem.RWMol()
    for a in z:
        rw.AddAtom(Chem.Atom(int(a)))
    for i, j in edges.T:
        if i < j:
            rw.AddBond(int(i), int(j), Chem.BondType.SINGLE)
    return rw


def test_disagreements_equal_exact_graph_comparison(qm9_slice):
    raw = read_qm9(qm9_slice)
    out = process(raw, cutoff=6.0, progress=False)
    found = {d["index"] for d in out["meta"]["bond_disagreements"]}
    exact = set()
    aptr, bptr = out["atom_ptr"], out["bond_ptr"]
    for m, smiles in enumerate(out["smiles"]):
        z = out["z"][aptr[m]:aptr[m + 1]]
        geo = _geometry_mol(z, out["bond_local"][:, bptr[m]:bptr[m + 1]])
        if _skeleton(geo) != _skeleton(Chem.AddHs(Chem.MolFromSmiles(smiles))):
            exact.add(int(out["idx"][m]))
    assert found == exact
    assert 20 < len(found) < 0.2 * len(raw)
    assert 105 in found  # bicyclo[1.1.1]pentane: bridgeheads 1.87 Å apart read as bonded


def test_smiles_environments_count_hydrogens_and_bonds():
    codes, bonds, bad = smiles_environments(["CO", "C#N", "[NH3+]CC([O-])=O", "not a smiles"])
    assert bad == [3]
    assert list(bonds[:3]) == [5, 2, 9]  # a triple bond is one edge
    assert [describe(int(c)) for c in codes[0, :2]] == ["C(1 heavy, 3 H)", "O(1 heavy, 1 H)"]


def test_explain_names_the_changed_environments():
    geo, smi = np.array([60301, 60400]), np.array([60301, 60300])
    assert explain(geo, smi) == "geometry has C(4 heavy, 0 H) where the SMILES has C(3 heavy, 0 H)"
