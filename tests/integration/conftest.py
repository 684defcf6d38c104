"""Fixtures of the integration tests: QM9 molecules exported as extended XYZ, and the field's
models trained on them by their own tools."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def field_xyz(qm9_slice, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{"train", "val", "test"}: the QM9 slice (first 80 molecules) cut 60/10/10 and written by
    irrepscope's exporter (energies in eV under REF_energy, SMILES)."""
    from irrepscope.data import load_dataset
    from irrepscope.data.export import export_molecules

    folder, cache = qm9_slice
    dataset = load_dataset(qm9_dir=folder, data_dir=cache, progress=False)
    order = np.random.default_rng(0).permutation(len(dataset))
    parts = {"train": order[:60], "val": order[60:70], "test": order[70:]}
    out = tmp_path_factory.mktemp("field_xyz")
    return {name: export_molecules(dataset, positions, out / f"{name}.xyz")[0]
            for name, positions in parts.items()}


@pytest.fixture(scope="session")
def nequip_train():
    """``nequip_train(config, xyz, out, *overrides)``: configs/field/<config>.yaml trained by
    nequip's own entry point (nequip-train, one thread); returns the best.ckpt path."""
    return _nequip_train


def _nequip_train(config: str, xyz: dict[str, Path], out: Path, *overrides: str) -> Path:
    command = [str(Path(sys.executable).with_name("nequip-train")), "-cp",
               str(REPO / "configs" / "field"), "-cn", config, f"hydra.run.dir={out}",
               *(f"{name}_file={path}" for name, path in xyz.items()), *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return out / "best.ckpt"
