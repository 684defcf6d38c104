"""irrepscope.ase: ASE's conventions, agreement with predict, and energy-conserving dynamics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from ase import units
from ase.build import molecule
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet

from irrepscope.ase import IrrepscopeCalculator
from irrepscope.errors import DataError
from irrepscope.model import ModelConfig, build_model
from irrepscope.predict import Predictor, predict_file, read_frames

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def radius_predictor() -> Predictor:
    """A random float64 radius-graph model (6 Å: every pair of a small molecule is an edge)."""
    torch.manual_seed(1)
    config = ModelConfig(orders=[0, 1, 2], hidden=4, num_layers=1, sh_backend="torch")
    return Predictor(build_model(config, dtype=torch.float64), "radius", 6.0)


def test_calculator_energies_equal_predict(tiny_run: Path, tiny_run_test_xyz: Path,
                                           tmp_path: Path) -> None:
    _, pred = predict_file(tiny_run, tiny_run_test_xyz, tmp_path / "pred.csv", forces=True,
                           progress=False)
    calc = IrrepscopeCalculator(tiny_run)
    energies, forces = [], []
    for atoms in read_frames(tiny_run_test_xyz).atoms:
        atoms.calc = calc
        energies.append(atoms.get_potential_energy())
        forces.append(atoms.get_forces())
        assert atoms.get_potential_energy(force_consistent=True) == energies[-1]
        assert atoms.get_potential_energies().sum() == pytest.approx(energies[-1], rel=1e-6)
    np.testing.assert_allclose(energies, pred.energy, rtol=1e-6)
    np.testing.assert_allclose(np.concatenate(forces), pred.forces, rtol=1e-5, atol=1e-6)


def test_calculator_refuses_periodic_atoms(radius_predictor: Predictor) -> None:
    atoms = molecule("H2O", cell=[5, 5, 5], pbc=True)
    atoms.calc = IrrepscopeCalculator(predictor=radius_predictor)
    with pytest.raises(DataError, match="periodic boundary conditions .* atoms.pbc = False"):
        atoms.get_potential_energy()


def _energy_error(predictor: Predictor, timestep_fs: float, duration_fs: float) -> float:
    """Largest |total energy - initial| (eV) of velocity-Verlet dynamics of ethanol."""
    atoms = molecule("CH3CH2OH")
    atoms.calc = IrrepscopeCalculator(predictor=predictor)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
    totals = [atoms.get_total_energy()]
    dynamics = VelocityVerlet(atoms, timestep=timestep_fs * units.fs)
    dynamics.attach(lambda: totals.append(atoms.get_total_energy()), interval=1)
    dynamics.run(round(duration_fs / timestep_fs))
    return float(np.abs(np.asarray(totals) - totals[0]).max())


def test_velocity_verlet_conserves_energy(radius_predictor: Predictor) -> None:
    # Velocity Verlet's energy error is O(dt^2) for smooth forces: the same 10 fs at half the
    # step must shrink it ~4x. A wrong force (sign, factor, missing term) makes the error O(1)
    # and step-independent instead, and fails both checks.
    coarse = _energy_error(radius_predictor, 0.1, 10.0)
    fine = _energy_error(radius_predictor, 0.05, 10.0)
    assert coarse < 1e-2
    assert 3.0 < coarse / fine < 5.0
