"""Mulliken-derived targets: per-atom charges, the dipole (l=1) and traceless quadrupole (l=2).

QM9 (qm9pack's ``Mulliken_pop`` column) gives every atom's Mulliken **charge** in e (negative on
O and N, positive on H; each molecule's charges sum to zero within 6e-6 e), in the frame of the
``XYZ_Ang`` coordinates. From them, about each molecule's centre of mass c (atomic masses from
``ase.data``), with r_i = pos_i - c in Å:

- dipole ``d = sum_i q_i r_i`` in **e·Å** (1 e·Å = ``DEBYE_PER_E_ANGSTROM`` D = 4.8032 D);
  for a neutral molecule it does not depend on the origin. Stored as (d_x, d_y, d_z), which is
  e3nn's ``1o`` basis (e3nn >= 0.5: ``o3.Irreps("1o").D_from_matrix(R)`` is R itself).
- traceless quadrupole ``Q = sum_i q_i (3 r_i r_i^T - |r_i|^2 I) / 2`` in **e·Å²**, stored as
  its 5 components in e3nn's ``2e`` basis: ``c_m = <B_m, Q>`` (Frobenius product) with the
  orthonormal symmetric traceless matrices ``L2_BASIS`` = B_0..B_4 (m = -2..2, y the polar
  axis, as ``o3.spherical_harmonics(2, r)`` orders them)::

      B_0 = (e_x e_z^T + e_z e_x^T) / sqrt(2)      B_3 = (e_y e_z^T + e_z e_y^T) / sqrt(2)
      B_1 = (e_x e_y^T + e_y e_x^T) / sqrt(2)      B_4 = diag(-1, 0, 1) / sqrt(2)
      B_2 = diag(-1, 2, -1) / sqrt(6)

  so ``r^T B_m r = Y^2_m(r) / sqrt(15/2)`` (e3nn's 'component' normalisation), the map is an
  isometry (``|c| = ||Q||_F``) and ``Q = sum_m c_m B_m``; rotating the molecule by R turns c
  into ``D^2(R) c``.
- rotation invariants for invariant-only baselines: ``|d|`` and ``|c| = ||Q||_F``.

A molecule whose charges are missing or not finite, or do not sum to zero within
``CHARGE_SUM_TOLERANCE``, has no valid charge targets: it is listed in the cache metadata and
skipped (counted, with a message) only by runs that ask for these targets.
"""

from __future__ import annotations

import math

import numpy as np

from irrepscope.errors import DataError

TARGETS = ("energy", "charges", "dipole", "quadrupole")
CHARGE_TARGETS = ("charges", "dipole", "quadrupole")  # need per-atom charges in the data
UNITS = {"energy": "eV", "charges": "e", "dipole": "e·Å", "quadrupole": "e·Å²"}
# 1 e·Å in Debye: e (1.602176634e-19 C) * 1e-10 m / (1e-21 / c C·m) with c = 299792458 m/s.
DEBYE_PER_E_ANGSTROM = 1.602176634e-29 * 299792458.0 / 1e-21
CHARGE_SUM_TOLERANCE = 1e-3  # e
_S2, _S6 = 1.0 / math.sqrt(2.0), 1.0 / math.sqrt(6.0)
L2_BASIS = np.array([
    [[0, 0, _S2], [0, 0, 0], [_S2, 0, 0]],
    [[0, _S2, 0], [_S2, 0, 0], [0, 0, 0]],
    [[-_S6, 0, 0], [0, 2 * _S6, 0], [0, 0, -_S6]],
    [[0, 0, 0], [0, 0, _S2], [0, _S2, 0]],
    [[-_S2, 0, 0], [0, 0, 0], [0, 0, _S2]],
])  # [5, 3, 3]: B_m, m = -2..2 in e3nn's order


def tensor_to_l2(tensor: np.ndarray) -> np.ndarray:
    """Symmetric traceless [..., 3, 3] -> its 5 components in e3nn's 2e basis [..., 5]."""
    return np.einsum("mij,...ij->...m", L2_BASIS, np.asarray(tensor, dtype=np.float64))


def l2_to_tensor(components: np.ndarray) -> np.ndarray:
    """5 components in e3nn's 2e basis [..., 5] -> the symmetric traceless tensor [..., 3, 3]."""
    return np.einsum("mij,...m->...ij", L2_BASIS, np.asarray(components, dtype=np.float64))


def atomic_masses(z: np.ndarray) -> np.ndarray:
    """Standard atomic masses (u, ``ase.data.atomic_masses``) of atomic numbers ``z`` [A]."""
    from ase.data import atomic_masses as masses

    return masses[np.asarray(z, dtype=np.int64)]


def _molecule_of(counts: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(counts)), counts)


def centres_of_mass(z: np.ndarray, pos: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Centre of mass of each molecule: float64 [M, 3] Å (atoms listed molecule after molecule)."""
    mol, mass = _molecule_of(counts), atomic_masses(z)
    total = np.bincount(mol, weights=mass, minlength=len(counts))
    weighted = np.stack([np.bincount(mol, weights=mass * pos[:, k], minlength=len(counts))
                         for k in range(3)], axis=1)
    return weighted / np.maximum(total, 1e-300)[:, None]


def relative_positions(z: np.ndarray, pos: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Every atom's position about its molecule's centre of mass: float64 [A, 3] Å."""
    pos = np.asarray(pos, dtype=np.float64)
    return pos - centres_of_mass(z, pos, counts)[_molecule_of(counts)]


def mulliken_dipole(charges: np.ndarray, z: np.ndarray, pos: np.ndarray,
                    counts: np.ndarray) -> np.ndarray:
    """``sum_i q_i r_i`` about the centre of mass: float64 [M, 3] e·Å, (x, y, z) = e3nn 1o."""
    r, mol = relative_positions(z, pos, counts), _molecule_of(counts)
    q = np.asarray(charges, dtype=np.float64)
    return np.stack([np.bincount(mol, weights=q * r[:, k], minlength=len(counts))
                     for k in range(3)], axis=1)


def quadrupole_tensor(charges: np.ndarray, z: np.ndarray, pos: np.ndarray,
                      counts: np.ndarray) -> np.ndarray:
    """``sum_i q_i (3 r_i r_i^T - |r_i|^2 I) / 2`` about the centre of mass: [M, 3, 3] e·Å²."""
    r, mol = relative_positions(z, pos, counts), _molecule_of(counts)
    q = np.asarray(charges, dtype=np.float64)
    per_atom = 1.5 * r[:, :, None] * r[:, None, :] - 0.5 * (r * r).sum(1)[:, None, None] * np.eye(3)
    out = np.zeros((len(counts), 3, 3))
    np.add.at(out, mol, q[:, None, None] * per_atom)
    return out


def mulliken_quadrupole(charges: np.ndarray, z: np.ndarray, pos: np.ndarray,
                        counts: np.ndarray) -> np.ndarray:
    """The traceless quadrupole's 5 components in e3nn's 2e basis: float64 [M, 5] e·Å²."""
    return tensor_to_l2(quadrupole_tensor(charges, z, pos, counts))


def invariants(dipole: np.ndarray, quadrupole: np.ndarray) -> dict[str, np.ndarray]:
    """Rotation invariants [M]: ``dipole_norm`` |d| (e·Å), ``quadrupole_norm`` ||Q||_F (e·Å²)."""
    return {"dipole_norm": np.linalg.norm(dipole, axis=-1),
            "quadrupole_norm": np.linalg.norm(quadrupole, axis=-1)}


def charge_problems(charges: np.ndarray, counts: np.ndarray) -> dict[int, str]:
    """Positions of molecules without valid charges -> why (not finite, or not summing to 0)."""
    mol = _molecule_of(counts)
    q = np.asarray(charges, dtype=np.float64)
    bad_atoms = np.bincount(mol, weights=(~np.isfinite(q)).astype(float), minlength=len(counts))
    total = np.bincount(mol, weights=np.where(np.isfinite(q), q, 0.0), minlength=len(counts))
    out = {int(p): "Mulliken charges are missing, NaN or infinite"
           for p in np.flatnonzero(bad_atoms > 0)}
    for p in np.flatnonzero(np.abs(total) > CHARGE_SUM_TOLERANCE):
        out.setdefault(int(p), f"Mulliken charges sum to {total[p]:.4g} e, not 0 (within "
                               f"{CHARGE_SUM_TOLERANCE:g} e): the dipole depends on the origin")
    return out


def charge_targets(charges: np.ndarray | None, z: np.ndarray, pos: np.ndarray,
                   counts: np.ndarray) -> dict[str, np.ndarray]:
    """``dipole`` [M, 3] e·Å and ``quadrupole`` [M, 5] e·Å² (empty [0, k] without charges)."""
    if charges is None:
        return {"dipole": np.zeros((0, 3)), "quadrupole": np.zeros((0, 5))}
    finite = np.where(np.isfinite(charges), charges, np.nan)
    return {"dipole": mulliken_dipole(finite, z, pos, counts),
            "quadrupole": mulliken_quadrupole(finite, z, pos, counts)}


def needs_charges(targets) -> list[str]:
    """The targets among ``targets`` that are computed from per-atom charges."""
    return [t for t in targets if t in CHARGE_TARGETS]


def check_available(targets, has_charges: bool, source: str) -> None:
    """``DataError`` when charge-derived targets are asked of a source without charges."""
    wanted = needs_charges(targets)
    if wanted and not has_charges:
        raise DataError(
            f"train.targets asks for {', '.join(wanted)}, which are computed from per-atom "
            f"Mulliken charges, but {source} has none (QM9 has them; an extended-XYZ file needs a "
            f"per-atom 'charges' column); train on energy only (train.targets: {{energy: 1.0}}) "
            f"or use a data set with charges")
