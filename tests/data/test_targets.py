"""Mulliken targets: dipole and quadrupole rotate with D^1, D^2, the 3x3 <-> l=2 map, validation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from ase import Atoms
from ase.io import write
from e3nn import o3
from qm9_files import METHANE, WATER, basic_rows, write_part

from irrepscope.data import load_dataset
from irrepscope.data.qm9 import read_qm9
from irrepscope.data.targets import (
    DEBYE_PER_E_ANGSTROM,
    charge_problems,
    invariants,
    l2_to_tensor,
    mulliken_dipole,
    mulliken_quadrupole,
    quadrupole_tensor,
    tensor_to_l2,
)
from irrepscope.errors import DataError
from irrepscope.model.dtype import default_dtype
from irrepscope.testing import random_rotation

WATER_CHARGES = [-0.589706, 0.294853, 0.294853]  # qm9pack's Mulliken_pop of molecule 3


def _wigner(l: int, rotation: np.ndarray) -> np.ndarray:
    with default_dtype(torch.float64):
        return o3.Irrep(l, (-1) ** l).D_from_matrix(torch.as_tensor(rotation)).numpy()


def _molecule(seed: int, n: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(z, pos [n, 3] Å, neutral charges [n]) of a random molecule."""
    rng = np.random.default_rng(seed)
    z = rng.choice([1, 6, 7, 8, 9], size=n)
    q = rng.normal(size=n)
    return z, rng.uniform(-2, 2, size=(n, 3)), q - q.mean()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dipole_and_quadrupole_rotate_with_wigner_matrices(seed):
    z, pos, q = _molecule(seed)
    counts = np.array([len(z)])
    rotation = random_rotation(generator=torch.Generator().manual_seed(seed)).numpy()
    d, c = mulliken_dipole(q, z, pos, counts)[0], mulliken_quadrupole(q, z, pos, counts)[0]
    d_rot = mulliken_dipole(q, z, pos @ rotation.T, counts)[0]
    c_rot = mulliken_quadrupole(q, z, pos @ rotation.T, counts)[0]
    np.testing.assert_allclose(d_rot, _wigner(1, rotation) @ d, atol=1e-10, rtol=0)
    np.testing.assert_allclose(c_rot, _wigner(2, rotation) @ c, atol=1e-10, rtol=0)
    # the 3x3 tensor rotates as R Q R^T, and the l=2 map commutes with that
    q_rot = quadrupole_tensor(q, z, pos @ rotation.T, counts)[0]
    np.testing.assert_allclose(q_rot, rotation @ l2_to_tensor(c) @ rotation.T, atol=1e-10)


def test_translation_and_inversion():
    z, pos, q = _molecule(3)
    counts = np.array([len(z)])
    shift = np.array([3.0, -7.5, 12.25])
    np.testing.assert_allclose(mulliken_dipole(q, z, pos + shift, counts),
                               mulliken_dipole(q, z, pos, counts), atol=1e-10)
    np.testing.assert_allclose(mulliken_quadrupole(q, z, pos + shift, counts),
                               mulliken_quadrupole(q, z, pos, counts), atol=1e-10)
    # parity: 1o flips sign under inversion, 2e does not
    np.testing.assert_allclose(mulliken_dipole(q, z, -pos, counts),
                               -mulliken_dipole(q, z, pos, counts), atol=1e-12)
    np.testing.assert_allclose(mulliken_quadrupole(q, z, -pos, counts),
                               mulliken_quadrupole(q, z, pos, counts), atol=1e-12)


def test_l2_map_round_trips_and_matches_e3nn_spherical_harmonics():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(10, 3, 3))
    sym = (a + a.transpose(0, 2, 1)) / 2
    traceless = sym - np.trace(sym, axis1=1, axis2=2)[:, None, None] * np.eye(3) / 3
    c = tensor_to_l2(traceless)
    np.testing.assert_allclose(l2_to_tensor(c), traceless, atol=1e-12)
    np.testing.assert_allclose(tensor_to_l2(l2_to_tensor(c)), c, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(c, axis=1),  # an isometry
                               np.linalg.norm(traceless, axis=(1, 2)), atol=1e-12)
    r = rng.normal(size=(10, 3))
    outer = r[:, :, None] * r[:, None, :] - (r * r).sum(1)[:, None, None] * np.eye(3) / 3
    sh = o3.spherical_harmonics(2, torch.as_tensor(r), normalize=False,
                                normalization="component").numpy()
    np.testing.assert_allclose(tensor_to_l2(outer), sh / math.sqrt(7.5), atol=1e-12)


def test_l1_basis_is_xyz_in_this_e3nn():
    """The stored dipole (x, y, z) is e3nn's 1o basis: D^1(R) = R and Y^1(r) ∝ r."""
    rotation = random_rotation().numpy()
    np.testing.assert_allclose(_wigner(1, rotation), rotation, atol=1e-12)
    r = torch.tensor([[0.3, -1.2, 0.7]], dtype=torch.float64)
    sh = o3.spherical_harmonics(1, r, normalize=False, normalization="component")
    np.testing.assert_allclose(sh.numpy(), math.sqrt(3) * r.numpy(), atol=1e-12)


def test_water_mulliken_dipole_from_the_real_csv(qm9_slice):
    raw = read_qm9(qm9_slice)
    water = int(np.flatnonzero(raw.idx == 3)[0])
    start = int(raw.ptr[water])
    np.testing.assert_allclose(raw.charges[start:start + 3], WATER_CHARGES)
    d = mulliken_dipole(raw.charges, raw.z, raw.pos, raw.counts)[water]
    assert np.linalg.norm(d) * DEBYE_PER_E_ANGSTROM == pytest.approx(1.683, abs=1e-3)
    sums = np.bincount(np.repeat(np.arange(len(raw)), raw.counts), weights=raw.charges)
    assert np.abs(sums).max() < 1e-5  # Mulliken_pop holds charges, not populations
    norms = invariants(mulliken_dipole(raw.charges, raw.z, raw.pos, raw.counts),
                       mulliken_quadrupole(raw.charges, raw.z, raw.pos, raw.counts))
    assert norms["dipole_norm"][water] == pytest.approx(np.linalg.norm(d))


def test_charge_problems_are_counted():
    q = np.array([0.1, -0.1, np.nan, 0.0, 0.5, 0.2])
    problems = charge_problems(q, np.array([2, 2, 2]))
    assert set(problems) == {1, 2}
    assert "NaN" in problems[1] and "sum to 0.7" in problems[2]


def _rows_with_charges(charges: list[str]) -> list[dict]:
    rows = basic_rows()
    for row, text in zip(rows, charges, strict=True):
        row["Mulliken_pop"] = text
    return rows


def test_dataset_items_carry_targets_and_bad_charges_are_skipped_only_when_asked(tmp_path,
                                                                                 capsys):
    folder = tmp_path / "qm9"
    folder.mkdir()
    rows = _rows_with_charges(["[-0.5,0.125,0.125,0.125,0.125]", "[-0.6,0.2,0.2,0.2]",
                               "[-0.6,0.3,0.5]"])  # water's charges sum to 0.2 e
    pd.DataFrame(rows).to_csv(folder / "qm9_part1.csv", index=False)
    cache = tmp_path / "cache"
    energy_only = load_dataset(qm9_dir=folder, data_dir=cache, progress=False)
    assert len(energy_only) == 3 and energy_only.has_charges
    with pytest.raises(DataError, match=r"molecule 3: Mulliken charges sum to 0\.2 e"):
        load_dataset(qm9_dir=folder, data_dir=cache, progress=False, targets=("dipole",))
    ds = load_dataset(qm9_dir=folder, data_dir=cache, progress=False, targets=("dipole",),
                      skip_invalid=True)
    assert "skipped 1 invalid molecule" in capsys.readouterr().err
    assert len(ds) == 2
    item = ds[1]
    assert item.charges.shape == (4,) and item.dipole.shape == (1, 3)
    assert item.quadrupole.shape == (1, 5)
    z, pos = item.z.numpy(), item.pos.numpy().astype(np.float64)
    expected = mulliken_dipole(np.array([-0.6, 0.2, 0.2, 0.2]), z, pos, np.array([4]))
    np.testing.assert_allclose(item.dipole.numpy(), expected, atol=1e-6)


def test_source_without_charges_is_one_clear_error(tmp_path, qm9_dir):
    cache = tmp_path / "cache"
    assert not load_dataset(qm9_dir=qm9_dir, data_dir=cache, progress=False).has_charges
    with pytest.raises(DataError, match="asks for quadrupole.*has none"):
        load_dataset(qm9_dir=qm9_dir, data_dir=cache, progress=False, targets=("quadrupole",))
    path = tmp_path / "mols.extxyz"
    frames = [Atoms(symbols=m[1], positions=m[2], info={"energy": -1.0})
              for m in (METHANE, WATER)]
    write(path, frames, format="extxyz")
    with pytest.raises(DataError, match="asks for charges, dipole.*mols.extxyz has none"):
        load_dataset("xyz", xyz=path, data_dir=cache, progress=False,
                     targets=("energy", "charges", "dipole"))


def test_xyz_charges_column_gives_targets(tmp_path):
    frames = []
    for mol, q in ((METHANE, [-0.4, 0.1, 0.1, 0.1, 0.1]), (WATER, WATER_CHARGES)):
        atoms = Atoms(symbols=mol[1], positions=mol[2], info={"energy": -1.0})
        atoms.set_array("charges", np.array(q))
        frames.append(atoms)
    path = tmp_path / "charged.extxyz"
    write(path, frames, format="extxyz")
    ds = load_dataset("xyz", xyz=path, data_dir=tmp_path / "cache", progress=False,
                      targets=("dipole",))
    norm = float(ds.dipole[1].norm()) * DEBYE_PER_E_ANGSTROM
    assert norm == pytest.approx(1.683, abs=1e-3)


def test_csv_parts_without_the_charges_column(tmp_path):
    folder = tmp_path / "qm9"
    folder.mkdir()
    write_part(folder / "qm9_part1.csv", basic_rows())
    assert read_qm9(folder).charges is None
