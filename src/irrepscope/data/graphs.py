"""Neighbour lists of molecules: radius graphs and covalent bonds perceived from the geometry.

Conventions (PyG): ``edge_index`` int64 [2, E], row 0 the source and row 1 the target of each
message, both directions of every pair present, no self-loops; an edge vector is
``pos[target] - pos[source]`` in Å. Edges are ordered by source, then target.

Bonds: atoms i, j are bonded when ``|r_i - r_j| <= rcov_i + rcov_j + 0.45 Å`` with RDKit's
covalent radii; this is the rule of RDKit's ``rdDetermineBonds.DetermineConnectivity`` (default
arguments), reproduced here vectorised (tests compare the two on QM9 molecules).

Up to ``DENSE_MAX_ATOMS`` atoms every pair is computed at once ([N, N] arrays, fast for the
many small molecules of QM9); above, ``close_pairs`` finds the candidate pairs with a k-d tree
(memory and time O(N) at a fixed atom density) and computes their distances with the same
arithmetic, so both give the same edges in the same order (tests compare them).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

import numpy as np
import torch

BOND_TOLERANCE = 0.45  # Å added to the sum of covalent radii (RDKit DetermineConnectivity)
MIN_DISTANCE = 0.1  # Å; closer atoms make a molecule invalid
MAX_Z = 118
DENSE_MAX_ATOMS = 512  # larger molecules: close_pairs (an [N, N, 3] array would take 24 N² B)


@lru_cache(maxsize=1)
def covalent_radii() -> np.ndarray:
    """float64 [119]: RDKit's covalent radius (Å) of each atomic number (index 0 unused)."""
    from rdkit import Chem

    table = Chem.GetPeriodicTable()
    return np.array([0.0] + [table.GetRcovalent(z) for z in range(1, MAX_Z + 1)])


def squared_distances(pos: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """[..., N, N] squared distances of [..., N, 3] positions, as dx*dx + dy*dy + dz*dz."""
    d = pos[..., None, :, :] - pos[..., :, None, :]
    return d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1] + d[..., 2] * d[..., 2]


def bond_adjacency(z: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """bool [..., N, N] covalent bonds of [..., N] atomic numbers at [..., N, 3] positions (Å)."""
    r = covalent_radii()[np.asarray(z)]
    limit = r[..., :, None] + r[..., None, :] + BOND_TOLERANCE
    adj = np.sqrt(squared_distances(np.asarray(pos, dtype=np.float64))) <= limit
    n = adj.shape[-1]
    adj[..., np.arange(n), np.arange(n)] = False
    return adj


def radius_adjacency(pos: np.ndarray, cutoff: float) -> np.ndarray:
    """bool [..., N, N]: distinct atoms closer than ``cutoff`` Å (computed in float64)."""
    adj = squared_distances(np.asarray(pos, dtype=np.float64)) < cutoff * cutoff
    n = adj.shape[-1]
    adj[..., np.arange(n), np.arange(n)] = False
    return adj


def close_pairs(pos: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, squared distance Å²) of the pairs i < j of one molecule's atoms (pos [N, 3] Å,
    float64) that may be closer than ``radius`` Å: every pair closer than it, and a few just
    beyond (the k-d tree's own rounding is given a margin). Sorted by i, then j; the squared
    distances are computed exactly as ``squared_distances`` computes them."""
    from scipy.spatial import cKDTree

    pos = np.ascontiguousarray(pos, dtype=np.float64)
    if len(pos) < 2:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0)
    pairs = cKDTree(pos).query_pairs(radius * (1 + 1e-9) + 1e-9, output_type="ndarray")
    i, j = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
    order = np.lexsort((j, i))
    i, j = i[order], j[order]
    d = pos[j] - pos[i]
    return i, j, d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1] + d[:, 2] * d[:, 2]


def both_directions(i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """int64 [2, 2P] edges of the pairs (i, j): both directions, ordered by source then target."""
    src, dst = np.concatenate([i, j]), np.concatenate([j, i])
    order = np.lexsort((dst, src))
    return np.stack([src[order], dst[order]]).astype(np.int64)


def bonded_pairs(z: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) of the bonded pairs i < j of one molecule (``close_pairs``; the rule of
    ``bond_adjacency``)."""
    r = covalent_radii()[np.asarray(z)]
    i, j, d2 = close_pairs(pos, 2 * float(r.max(initial=0.0)) + BOND_TOLERANCE)
    keep = np.sqrt(d2) <= r[i] + r[j] + BOND_TOLERANCE
    return i[keep], j[keep]


def radius_pairs(pos: np.ndarray, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) of the pairs i < j of one molecule closer than ``cutoff`` Å (``close_pairs``;
    the rule of ``radius_adjacency``)."""
    i, j, d2 = close_pairs(pos, cutoff)
    keep = d2 < cutoff * cutoff
    return i[keep], j[keep]


def radius_edges(pos: torch.Tensor, cutoff: float) -> torch.Tensor:
    """int64 [2, E] every ordered pair of distinct atoms of one molecule closer than ``cutoff``.

    pos [N, 3] Å; distances in float64, so the result matches ``radius_adjacency``.
    """
    p = pos.detach().to(torch.float64)
    if len(p) > DENSE_MAX_ATOMS:
        return torch.from_numpy(both_directions(*radius_pairs(p.cpu().numpy(), cutoff)))
    adj = squared_distances(p) < cutoff * cutoff
    adj.fill_diagonal_(False)
    return adj.nonzero().t().contiguous()


def bond_edges(z: np.ndarray | torch.Tensor, pos: np.ndarray | torch.Tensor) -> torch.Tensor:
    """int64 [2, E] covalent bonds of one molecule (z [N], pos [N, 3] Å), both directions."""
    z = z.cpu().numpy() if isinstance(z, torch.Tensor) else np.asarray(z)
    pos = pos.detach().cpu().numpy() if isinstance(pos, torch.Tensor) else np.asarray(pos)
    if len(z) > DENSE_MAX_ATOMS:
        return torch.from_numpy(both_directions(*bonded_pairs(z, pos)))
    src, dst = np.nonzero(bond_adjacency(z, pos))
    return torch.from_numpy(np.stack([src, dst]).astype(np.int64))


def size_groups(counts: np.ndarray, budget: int = 4_000_000) -> Iterator[tuple[int, np.ndarray]]:
    """(n, molecule positions) for groups of molecules with n atoms each, at most ``budget``
    atom pairs (4096 molecules) per group."""
    order = np.argsort(counts, kind="stable")
    sorted_counts = counts[order]
    bounds = np.flatnonzero(np.diff(sorted_counts)) + 1
    for group in np.split(order, bounds):
        if len(group):
            n = int(counts[group[0]])
            chunk = max(1, min(4096, budget // max(n * n, 1)))
            for start in range(0, len(group), chunk):
                yield n, group[start:start + chunk]


def gather_group(ptr: np.ndarray, mols: np.ndarray, n: int) -> np.ndarray:
    """int64 [m, n] flat atom indices of molecules ``mols`` (each with n atoms)."""
    return ptr[mols][:, None] + np.arange(n)[None, :]
