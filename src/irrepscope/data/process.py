"""Validated molecules -> the processed arrays a cache file holds (both graph kinds, one cutoff).

Bond graphs are stored as local atom indices in the narrowest signed integer type that holds the
largest molecule's indices (int8 up to 128 atoms, int16 up to 32,768, then int32, int64; see
``local_index_dtype``); radius graphs are only counted here and built
per molecule when an item is read (``graphs.radius_edges``): at 6 Å they are nearly complete
(40 M edges over QM9, 640 MB as int64), while one molecule's costs microseconds to compute.
"""

from __future__ import annotations

import time

import numpy as np

from irrepscope.data import bondcheck
from irrepscope.data.graphs import (
    BOND_TOLERANCE,
    DENSE_MAX_ATOMS,
    MIN_DISTANCE,
    bond_adjacency,
    both_directions,
    close_pairs,
    covalent_radii,
    gather_group,
    radius_adjacency,
    radius_pairs,
    size_groups,
    squared_distances,
)
from irrepscope.data.molecules import Problem, RawMolecules, drop_invalid
from irrepscope.data.targets import charge_problems, charge_targets

GRAPH_KINDS = ("bonds", "radius")


def local_index_dtype(max_atoms: int) -> np.dtype:
    """Narrowest signed integer dtype holding atom indices 0..max_atoms-1 of one molecule."""
    for dtype in (np.int8, np.int16, np.int32):
        if max_atoms - 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def pack_local_edges(edge_local: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Local edge indices [2, B] cast to ``local_index_dtype`` of the largest of ``counts``."""
    dtype = local_index_dtype(int(np.max(counts, initial=0)))
    if edge_local.size and (edge_local.min() < 0 or edge_local.max() > np.iinfo(dtype).max):
        raise ValueError("local edge indices outside 0..max(counts)-1")  # programming error
    return edge_local.astype(dtype)


def _finite_problems(raw: RawMolecules) -> dict[int, str]:
    """Positions of molecules with NaN/Inf coordinates or energies."""
    mol = np.repeat(np.arange(len(raw)), raw.counts)
    bad_atoms = ~np.isfinite(raw.pos).all(axis=1)
    bad = {int(p): "coordinates are NaN or infinite" for p in np.unique(mol[bad_atoms])}
    for p in np.flatnonzero(~np.isfinite(raw.y)):
        bad.setdefault(int(p), "energy is NaN or infinite")
    return bad


def _geometry_pass(raw: RawMolecules, cutoff: float, progress: bool) -> dict[str, np.ndarray]:
    """Per molecule: closest pair, bonds, radius-edge count, environments; grouped by size."""
    from tqdm.auto import tqdm

    m, ptr = len(raw), raw.ptr
    out = {"min_dist": np.full(m, np.inf), "close_pair": np.zeros((m, 2), np.int64),
           "bond_count": np.zeros(m, np.int64), "radius_count": np.zeros(m, np.int64),
           "codes": np.zeros((m, bondcheck.MAX_ATOMS), np.int64),
           "odd_h": np.zeros(m, bool)}
    pos32 = raw.pos.astype(np.float32)
    edge_mol, edge_src, edge_dst = [], [], []
    groups = list(size_groups(raw.counts))
    with tqdm(total=m, desc="building graphs", disable=not progress, mininterval=1.0) as bar:
        for n, mols in groups:
            if n > DENSE_MAX_ATOMS:  # one molecule at a time, in O(n) memory
                for mol in mols:
                    atoms = slice(ptr[mol], ptr[mol + 1])
                    src, dst = _large_molecule(raw.z[atoms], raw.pos[atoms], pos32[atoms],
                                               cutoff, out, mol)
                    edge_mol.append(np.full(len(src), mol))
                    edge_src.append(src)
                    edge_dst.append(dst)
                bar.update(len(mols))
                continue
            atoms = gather_group(ptr, mols, n)
            z, pos = raw.z[atoms], raw.pos[atoms]
            d2 = squared_distances(pos)
            d2[:, np.arange(n), np.arange(n)] = np.inf
            flat = d2.reshape(len(mols), -1).argmin(axis=1)
            out["min_dist"][mols] = np.sqrt(d2.reshape(len(mols), -1)[np.arange(len(mols)), flat])
            out["close_pair"][mols] = np.stack([flat // n, flat % n], axis=1)
            adj = bond_adjacency(z, pos)
            out["bond_count"][mols] = adj.sum(axis=(1, 2))
            k, i, j = np.nonzero(adj)
            edge_mol.append(mols[k])
            edge_src.append(i)
            edge_dst.append(j)
            out["radius_count"][mols] = radius_adjacency(pos32[atoms], cutoff).sum(axis=(1, 2))
            out["codes"][mols], out["odd_h"][mols] = bondcheck.geometry_environments(z, adj)
            bar.update(len(mols))
    mol = np.concatenate(edge_mol) if edge_mol else np.zeros(0, np.int64)
    order = np.argsort(mol, kind="stable")
    out["edge_mol"] = mol[order]
    out["edge_local"] = np.stack([np.concatenate(edge_src or [np.zeros(0, np.int64)])[order],
                                  np.concatenate(edge_dst or [np.zeros(0, np.int64)])[order]])
    return out


def _large_molecule(z: np.ndarray, pos: np.ndarray, pos32: np.ndarray, cutoff: float,
                    out: dict[str, np.ndarray], mol: int) -> tuple[np.ndarray, np.ndarray]:
    """The geometry pass of one molecule above ``DENSE_MAX_ATOMS`` atoms (``graphs.close_pairs``;
    the closest pair is looked for within the longest possible bond and MIN_DISTANCE, and is
    infinitely far beyond them); fills ``out[...][mol]``, returns the bonds (source, target)."""
    r = covalent_radii()[z]
    i, j, d2 = close_pairs(pos, max(2 * float(r.max()) + BOND_TOLERANCE, MIN_DISTANCE))
    if len(d2):
        first = np.flatnonzero(d2 == d2.min())[0]  # sorted by (i, j): the dense pass's argmin
        out["min_dist"][mol] = np.sqrt(d2[first])
        out["close_pair"][mol] = (i[first], j[first])
    bonded = np.sqrt(d2) <= r[i] + r[j] + BOND_TOLERANCE
    edges = both_directions(i[bonded], j[bonded])
    out["bond_count"][mol] = edges.shape[1]
    out["radius_count"][mol] = 2 * len(radius_pairs(pos32.astype(np.float64), cutoff)[0])
    out["codes"][mol], out["odd_h"][mol] = bondcheck.edge_environments(z, edges)
    return edges[0], edges[1]


def _smiles_pass(raw: RawMolecules, geo: dict, progress: bool) -> tuple[dict, list[dict]]:
    """(unparsable positions -> problem, disagreement records) against the SMILES."""
    codes, smiles_bonds, unparsable = bondcheck.smiles_environments(raw.smiles, progress)
    bad = {p: f"SMILES {raw.smiles[p]!r} cannot be parsed by RDKit" for p in unparsable}
    differ = geo["odd_h"] | (geo["codes"] != codes).any(axis=1)
    differ[unparsable] = False
    records = [{"index": int(raw.idx[p]), "smiles": raw.smiles[p],
                "geometry_bonds": int(geo["bond_count"][p] // 2),
                "smiles_bonds": int(smiles_bonds[p]),
                "difference": bondcheck.explain(geo["codes"][p], codes[p])}
               for p in np.flatnonzero(differ)]
    return bad, records


def process(raw: RawMolecules, cutoff: float, progress: bool = True) -> dict:
    """Validate ``raw`` and build both graph kinds; returns the arrays and metadata to cache.

    Keys: z uint8 [A], pos float32 [A, 3] Å, atom_ptr int64 [M+1], y float64 [M] eV,
    idx int64 [M], smiles list[str], bond_local [2, B] (source, target within the molecule;
    ``local_index_dtype`` of the largest molecule), bond_ptr int64 [M+1], radius_count int64 [M],
    charges float32 [A] e (empty without charges), dipole float64 [M, 3] e·Å, quadrupole
    float64 [M, 5] e·Å² (``data.targets``; empty without charges), meta (dict, JSON-friendly;
    ``charge_problems`` lists the molecules without valid charge targets).
    """
    start = time.perf_counter()
    raw = drop_invalid(raw, _finite_problems(raw))
    geo = _geometry_pass(raw, cutoff, progress)
    bad = {}
    for p in np.flatnonzero(geo["min_dist"] < MIN_DISTANCE):
        a, b = geo["close_pair"][p]
        bad[int(p)] = (f"atoms {a} and {b} are {geo['min_dist'][p]:.3f} Å apart "
                       f"(closer than {MIN_DISTANCE} Å)")
    has_smiles = any(raw.smiles)
    disagreements: list[dict] = []
    if has_smiles:
        unparsable, disagreements = _smiles_pass(raw, geo, progress)
        for p, msg in unparsable.items():
            bad.setdefault(p, msg)
        disagreements = [d for d in disagreements if d["index"] not in
                         {int(raw.idx[p]) for p in bad}]
    keep = np.ones(len(raw), bool)
    keep[list(bad)] = False
    edge_keep = keep[geo["edge_mol"]]
    kept = drop_invalid(raw, bad)
    bond_count, radius_count = geo["bond_count"][keep], geo["radius_count"][keep]
    graph_problems = [Problem(int(i), "has no covalent bonds (no edges in the bonds graph)",
                              "bonds") for i in kept.idx[bond_count == 0]]
    graph_problems += [Problem(int(i), f"has no two atoms closer than the cutoff {cutoff} Å "
                               "(no edges in the radius graph)", "radius")
                       for i in kept.idx[radius_count == 0]]
    has_charges = kept.charges is not None
    charge_bad = charge_problems(kept.charges, kept.counts) if has_charges else {}
    meta = {
        "num_molecules": len(kept),
        "has_charges": has_charges,
        "charge_problems": [Problem(int(kept.idx[p]), msg).as_dict()
                            for p, msg in sorted(charge_bad.items())],
        "cutoff": float(cutoff),
        "problems": [p.as_dict() for p in sorted(kept.problems, key=lambda q: q.index)],
        "graph_problems": [p.as_dict() for p in graph_problems],
        "smiles_checked": has_smiles,
        "bond_disagreements": disagreements,
        "processing_seconds": round(time.perf_counter() - start, 3),
    }
    return {
        "z": kept.z.astype(np.uint8), "pos": kept.pos.astype(np.float32),
        "atom_ptr": kept.ptr, "y": kept.y, "idx": kept.idx, "smiles": kept.smiles,
        "bond_local": pack_local_edges(geo["edge_local"][:, edge_keep], np.diff(kept.ptr)),
        "bond_ptr": np.concatenate([[0], np.cumsum(bond_count)]).astype(np.int64),
        "radius_count": radius_count, "meta": meta,
        "charges": (kept.charges if has_charges else np.zeros(0)).astype(np.float32),
        **charge_targets(kept.charges, kept.z, kept.pos, kept.counts),
    }
