"""Extended-XYZ user data through ASE: labels from the info key, same validation and graphs."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.io import write
from qm9_files import METHANE, WATER

from irrepscope.data import load_dataset
from irrepscope.data.xyz import read_xyz
from irrepscope.errors import DataError


def _frames(**info_per_frame) -> list[Atoms]:
    frames = [Atoms(symbols=METHANE[1], positions=METHANE[2]),
              Atoms(symbols=WATER[1], positions=WATER[2])]
    for key, values in info_per_frame.items():
        for atoms, value in zip(frames, values, strict=True):
            atoms.info[key] = value
    return frames


@pytest.mark.parametrize("key", ["energy", "U0_eV"])
def test_xyz_labels_and_graphs(tmp_path, key):
    path = tmp_path / "mols.extxyz"
    write(path, _frames(**{key: [-17.5, -9.25]}), format="extxyz")
    ds = load_dataset(source="xyz", xyz=path, energy_key=key, data_dir=tmp_path / "c",
                      progress=False)
    assert len(ds) == 2 and list(ds.idx) == [0, 1] and ds.smiles == ["", ""]
    assert ds[0].y.item() == -17.5 and ds[1].y.item() == -9.25
    assert ds[0].z.tolist() == [6, 1, 1, 1, 1] and ds[0].edge_index.shape == (2, 8)
    assert np.allclose(ds[1].pos.numpy(), np.array(WATER[2]), atol=1e-6)
    assert ds.metadata["smiles_checked"] is False
    radius = load_dataset(source="xyz", xyz=path, energy_key=key, graph="radius", cutoff=6.0,
                          data_dir=tmp_path / "c", progress=False)
    assert radius[0].edge_index.shape == (2, 20)


def test_missing_energy_names_the_frame(tmp_path):
    path = tmp_path / "mols.extxyz"
    write(path, _frames(energy=[-1.0, -2.0]), format="extxyz")
    with pytest.raises(DataError, match="molecule 0: has no energy under the key 'E'"):
        load_dataset(source="xyz", xyz=path, energy_key="E", data_dir=tmp_path / "c",
                     progress=False)


def test_bad_frames_error_or_skip(tmp_path, capsys):
    frames = _frames(E=[-1.0, -2.0])
    frames.append(Atoms("OHH", positions=[[0, 0, 0], [0.05, 0, 0], [0, 0.96, 0]], info={"E": 1.}))
    frames.append(Atoms("OHH", positions=[[0, 0, 0], [np.nan, 0, 0], [0, 0.96, 0]],
                        info={"E": 1.}))
    path = tmp_path / "bad.extxyz"
    write(path, frames, format="extxyz")
    with pytest.raises(DataError, match="molecule 2: atoms 0 and 1 are 0.050 Å apart"):
        load_dataset(source="xyz", xyz=path, energy_key="E", data_dir=tmp_path / "c",
                     progress=False)
    ds = load_dataset(source="xyz", xyz=path, energy_key="E", data_dir=tmp_path / "c",
                      skip_invalid=True, progress=False)
    assert list(ds.idx) == [0, 1] and "skipped 2 invalid" in capsys.readouterr().err


def test_unreadable_file_and_unknown_element(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_xyz(tmp_path / "none.extxyz")
    path = tmp_path / "x.extxyz"
    path.write_text('2\nProperties=species:S:1:pos:R:3 E=1.0\nC 0 0 0\nQq 1.1 0 0\n')
    with pytest.raises(DataError, match="frame 0 cannot be read"):
        read_xyz(path, "E")
    path.write_text('2\nProperties=species:S:1:pos:R:3 E=1.0\nC 0 0 0\nX 1.1 0 0\n')
    with pytest.raises(DataError, match="molecule 0: contains an unknown element"):
        load_dataset(source="xyz", xyz=path, energy_key="E", data_dir=tmp_path / "c",
                     progress=False)
    with pytest.raises(DataError, match="needs an extended-XYZ file"):
        load_dataset(source="xyz", data_dir=tmp_path / "c", progress=False)
