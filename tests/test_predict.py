"""irrepscope.predict: run metrics reproduced, forces against finite differences and rotations,
per-atom energies, file round trips through ASE, and one clear error per bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule
from ase.io import read, write

from irrepscope.cli import main
from irrepscope.errors import DataError, RunDirError
from irrepscope.model import ModelConfig, build_model
from irrepscope.predict import Predictor, predict_file, raw_from_atoms, read_frames

QM9_ELEMENTS = {1, 6, 7, 8, 9}

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model64() -> torch.nn.Module:
    """A random float64 model (closed-form SH backend), for derivative checks."""
    torch.manual_seed(0)
    config = ModelConfig(orders=[0, 1, 2], hidden=4, num_layers=1, sh_backend="torch")
    return build_model(config, dtype=torch.float64)


def test_predict_reproduces_the_run_test_metrics(tiny_run: Path, tiny_run_test_xyz: Path,
                                                  tmp_path: Path) -> None:
    files, pred = predict_file(tiny_run, tiny_run_test_xyz, tmp_path / "pred.csv",
                               batch_size=5, progress=False)
    saved = json.loads((tiny_run / "test_metrics.json").read_text())
    error = pred.energy - pred.reference
    assert len(pred.energy) == saved["test_count"] == len(read(str(tiny_run_test_xyz), ":"))
    assert np.mean(error ** 2) == pytest.approx(saved["test_mse"], rel=1e-5)
    assert np.mean(np.abs(error)) == pytest.approx(saved["test_mae"], rel=1e-5)
    rows = np.genfromtxt(files[0], delimiter=",", names=True)
    np.testing.assert_allclose(rows["energy_eV"], pred.energy, rtol=1e-12)
    np.testing.assert_array_equal(rows["frame"], np.arange(len(pred.energy)))


def test_cli_writes_extxyz_that_ase_reads_back(tiny_run: Path, tiny_run_test_xyz: Path,
                                                tmp_path: Path) -> None:
    out = tmp_path / "pred.xyz"
    assert main(["predict", str(tiny_run), "--xyz", str(tiny_run_test_xyz), "--out",
                 str(out), "--forces", "--atom-energies", "--checkpoint", "last"]) == 0
    back = read(str(out), index=":")
    _, pred = predict_file(tiny_run, tiny_run_test_xyz, tmp_path / "again.csv",
                           checkpoint="last", forces=True, atom_energies=True, progress=False)
    np.testing.assert_allclose([a.get_potential_energy() for a in back], pred.energy, rtol=1e-9)
    np.testing.assert_allclose(np.concatenate([a.get_forces() for a in back]), pred.forces,
                               rtol=1e-6, atol=1e-9)
    per_atom = np.concatenate([a.get_potential_energies() for a in back])
    np.testing.assert_allclose(per_atom, pred.atom_energies, rtol=1e-9)
    atoms_csv = np.genfromtxt(tmp_path / "again_atoms.csv", delimiter=",", names=True)
    np.testing.assert_allclose(atoms_csv["fx_eV_per_A"], pred.forces[:, 0], rtol=1e-12)


@pytest.mark.parametrize("graph", ["radius", "bonds"])
def test_forces_equal_central_finite_differences(model64, graph: str) -> None:
    predictor = Predictor(model64, graph, 6.0, QM9_ELEMENTS)
    atoms = molecule("CH3CH2OH")
    forces = predictor.predict(raw_from_atoms([atoms]), forces=True, progress=False).forces
    step, shifted = 1e-5, []
    for i in range(len(atoms)):
        for k in range(3):
            for sign in (1, -1):
                moved = atoms.copy()
                moved.positions[i, k] += sign * step
                shifted.append(moved)
    energy = predictor.predict(raw_from_atoms(shifted), progress=False).energy.reshape(-1, 2)
    numeric = -(energy[:, 0] - energy[:, 1]).reshape(len(atoms), 3) / (2 * step)
    assert np.abs(numeric - forces).max() <= 1e-6 * np.abs(forces).max()


def test_forces_rotate_with_the_molecule(model64) -> None:
    from scipy.spatial.transform import Rotation

    predictor = Predictor(model64, "radius", 6.0, QM9_ELEMENTS)
    atoms = molecule("CH3CH2OH")
    rotation = Rotation.random(random_state=3).as_matrix()
    turned = atoms.copy()
    turned.positions = atoms.positions @ rotation.T
    pred = predictor.predict(raw_from_atoms([atoms, turned]), forces=True, progress=False)
    n = len(atoms)
    assert pred.energy[1] == pytest.approx(pred.energy[0], abs=1e-10)
    np.testing.assert_allclose(pred.forces[n:], pred.forces[:n] @ rotation.T, atol=1e-10)


def test_atom_energies_sum_to_energy_and_batches_agree(model64) -> None:
    predictor = Predictor(model64, "bonds", 6.0, QM9_ELEMENTS)
    frames = [molecule(name) for name in ("CH4", "H2O", "CH3CH2OH", "HCN", "CH3CN")]
    together = predictor.predict(raw_from_atoms(frames), atom_energies=True, batch_size=2,
                                 progress=False)
    alone = [predictor.predict(raw_from_atoms([f]), progress=False).energy[0] for f in frames]
    np.testing.assert_allclose(together.energy, alone, rtol=1e-12)
    sums = np.add.reduceat(together.atom_energies, together.ptr[:-1])
    np.testing.assert_allclose(sums, together.energy, rtol=1e-12)
    assert np.ptp(together.atom_energies[together.ptr[2]:together.ptr[3]]) > 0


def _bad_frames(path: Path) -> None:
    good = molecule("CH4")
    unseen = Atoms("LiH", positions=[[0, 0, 0], [0, 0, 1.6]])
    nan = molecule("H2O")
    nan.positions[1, 0] = np.nan
    close = Atoms("CO", positions=[[0, 0, 0], [0, 0, 0.05]])
    write(str(path), [good, unseen, nan, close, good], format="extxyz")


def test_bad_frames_name_frame_and_problem(model64, tmp_path: Path) -> None:
    _bad_frames(tmp_path / "bad.xyz")
    predictor = Predictor(model64, "bonds", 6.0, QM9_ELEMENTS)
    raw = read_frames(tmp_path / "bad.xyz").raw
    with pytest.raises(DataError, match=r"bad\.xyz: frame 1: contains element\(s\) Z=\[3\] the "
                                        r"model was not trained on.*3 invalid frames in all"):
        predictor.predict(raw, source=str(tmp_path / "bad.xyz"), progress=False)
    problems = {p.index: p.problem for p in predictor.problems(raw)}
    assert set(problems) == {1, 2, 3}
    assert "NaN" in problems[2] and "0.050 Å apart" in problems[3]
    kept = predictor.predict(raw, skip_invalid=True, progress=False)
    np.testing.assert_array_equal(kept.frame, [0, 4])
    assert kept.energy[0] == kept.energy[1]


def test_cli_skip_invalid_counts_and_one_line_errors(tiny_run: Path, tmp_path: Path,
                                                     capsys) -> None:
    _bad_frames(tmp_path / "bad.xyz")
    out = tmp_path / "pred.csv"
    assert main(["predict", str(tiny_run), "--xyz", str(tmp_path / "bad.xyz"), "--out",
                 str(out)]) == 2
    err = capsys.readouterr().err
    assert "frame 1" in err and "--skip-invalid" in err and "Traceback" not in err
    assert main(["predict", str(tiny_run), "--xyz", str(tmp_path / "bad.xyz"), "--out",
                 str(out), "--skip-invalid"]) == 0
    assert "skipped 3 invalid frame(s)" in capsys.readouterr().err
    assert len(out.read_text().splitlines()) == 3
    empty = tmp_path / "no_ckpt"
    empty.mkdir()
    (empty / "config.yaml").write_text((tiny_run / "config.yaml").read_text())
    with pytest.raises(RunDirError, match=r"no_ckpt/best\.ckpt is missing"):
        predict_file(empty, tmp_path / "bad.xyz", out)
    with pytest.raises(DataError, match="--out .*csv, .xyz or .extxyz"):
        predict_file(tiny_run, tmp_path / "bad.xyz", tmp_path / "pred.txt")


def test_training_elements_come_from_baseline_json_without_loading_data(tiny_run, tmp_path,
                                                                        monkeypatch) -> None:
    """The recorded elements equal those of the training split; no data set is loaded."""
    from irrepscope import predict
    from irrepscope.train import run as run_module

    from_data = predict.training_elements(_without_recorded_elements(tiny_run, tmp_path))
    monkeypatch.setattr(run_module, "load_run_dataset", lambda *a, **k: pytest.fail("loaded"))
    assert predict.training_elements(tiny_run) == from_data and from_data >= {1, 6}


def _without_recorded_elements(run_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    baseline = json.loads((copy / "baseline.json").read_text())
    del baseline["training_elements"]
    (copy / "baseline.json").write_text(json.dumps(baseline))
    return copy


def test_a_6000_atom_molecule_is_predicted_in_linear_memory(tiny_run, tmp_path):
    """Validation, the bond graph and forces of 1,500- and 6,000-atom water clusters: memory
    traced by tracemalloc grows like the atoms (all pairs held 864 MB at 6,000 atoms)."""
    import tracemalloc

    from irrepscope.bench.geometry import water_cluster

    peaks = {}
    for n in (1500, 6000):
        z, pos = water_cluster(n)
        path = tmp_path / f"water_{n}.xyz"
        write(path, [Atoms(numbers=z, positions=pos)], format="extxyz")
        tracemalloc.start()
        try:
            _, prediction = predict_file(tiny_run, path, tmp_path / f"water_{n}.csv",
                                         forces=True, progress=False)
            peaks[n] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert np.isfinite(prediction.energy).all() and prediction.forces.shape == (len(z), 3)
    assert peaks[6000] < 8 * peaks[1500] and peaks[6000] < 100 * 2**20, peaks  # all pairs: 16x
