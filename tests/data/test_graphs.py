"""Radius graphs against a brute-force double loop; bonds against RDKit DetermineConnectivity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qm9_files import random_molecule
from rdkit import Chem
from rdkit.Chem import rdDetermineBonds
from rdkit.Geometry import Point3D

from irrepscope.data.graphs import bond_adjacency, bond_edges, radius_adjacency, radius_edges
from irrepscope.data.qm9 import read_qm9


@pytest.mark.parametrize("cutoff", [1.5, 3.0, 6.0])
def test_radius_edges_equal_brute_force(cutoff):
    rng = np.random.default_rng(int(cutoff * 10))
    for n in (1, 2, 7, 29):
        pos = torch.from_numpy(random_molecule(rng, n)).float()
        edges = radius_edges(pos, cutoff)
        expected = [(i, j) for i in range(n) for j in range(n)
                    if i != j and float(torch.linalg.norm(pos[i].double() - pos[j].double()))
                    < cutoff]
        assert edges.dtype == torch.int64 and edges.shape == (2, len(expected))
        assert [tuple(e) for e in edges.t().tolist()] == expected  # source-major order
        adj = radius_adjacency(pos.numpy()[None], cutoff)[0]
        assert int(adj.sum()) == len(expected)


def test_radius_edges_handle_batched_adjacency():
    rng = np.random.default_rng(0)
    pos = np.stack([random_molecule(rng, 6) for _ in range(4)])
    adj = radius_adjacency(pos, 2.5)
    for m in range(4):
        single = radius_edges(torch.from_numpy(pos[m]), 2.5)
        assert int(adj[m].sum()) == single.shape[1]


def _rdkit_bonds(z: np.ndarray, pos: np.ndarray) -> set[tuple[int, int]]:
    mol = Chem.RWMol()
    for a in z:
        mol.AddAtom(Chem.Atom(int(a)))
    conf = Chem.Conformer(len(z))
    for i, p in enumerate(pos):
        conf.SetAtomPosition(i, Point3D(*map(float, p)))
    mol.AddConformer(conf)
    rdDetermineBonds.DetermineConnectivity(mol)
    return {tuple(sorted((b.GetBeginAtomIdx(), b.GetEndAtomIdx()))) for b in mol.GetBonds()}


def test_bonds_reproduce_rdkit_determine_connectivity(qm9_slice):
    raw = read_qm9(qm9_slice)
    ptr = raw.ptr
    rng = np.random.default_rng(1)
    for m in rng.choice(len(raw), size=250, replace=False):
        z, pos = raw.z[ptr[m]:ptr[m + 1]], raw.pos[ptr[m]:ptr[m + 1]]
        edges = bond_edges(z, pos)
        pairs = {tuple(e) for e in edges.t().tolist()}
        assert all((j, i) in pairs for i, j in pairs)  # both directions
        assert {p for p in pairs if p[0] < p[1]} == _rdkit_bonds(z, pos), raw.idx[m]


def test_bonds_match_smiles_bond_counts_on_simple_molecules(qm9_slice):
    raw = read_qm9(qm9_slice)
    ptr = raw.ptr
    checked = 0
    for m, smiles in enumerate(raw.smiles):
        if any(c.isdigit() for c in smiles):  # rings: strained polycycles may differ
            continue
        adj = bond_adjacency(raw.z[ptr[m]:ptr[m + 1]], raw.pos[ptr[m]:ptr[m + 1]])
        expected = Chem.AddHs(Chem.MolFromSmiles(smiles)).GetNumBonds()
        assert int(adj.sum()) // 2 == expected, (raw.idx[m], smiles)
        checked += 1
    assert checked > 100


def test_bond_edges_of_a_hand_made_molecule():
    # H-C-H bent, C-H 1.09 Å; the two hydrogens 1.78 Å apart (H-H limit 0.31*2+0.45=1.07)
    pos = np.array([[0.0, 0.0, 0.0], [1.09, 0.0, 0.0], [-0.36, 1.03, 0.0]])
    edges = bond_edges(np.array([6, 1, 1]), pos)
    assert edges.tolist() == [[0, 0, 1, 2], [1, 2, 0, 0]]
