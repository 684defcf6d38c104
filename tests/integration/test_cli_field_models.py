"""NequIP and Allegro models trained by nequip's own entry point on irrepscope-exported QM9,
analysed through `irrepscope analyze --model`; bad input gives one line and writes nothing."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.io import write

from irrepscope.cli import main

pytest.importorskip("nequip")
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def nequip_ckpt(field_xyz, nequip_train, tmp_path_factory) -> Path:
    return nequip_train("nequip", field_xyz, tmp_path_factory.mktemp("nequip") / "run",
                        "max_epochs=2", "num_features=4", "num_layers=2")


@pytest.fixture(scope="module")
def allegro_ckpt(field_xyz, nequip_train, tmp_path_factory) -> Path:
    pytest.importorskip("allegro")
    return nequip_train("allegro", field_xyz, tmp_path_factory.mktemp("allegro") / "run",
                        "max_epochs=2", "num_scalar_features=8", "num_tensor_features=4")


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "utilization.csv") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize(("fixture", "layers", "model_block"), [
    ("nequip_ckpt", ["model.func.layer0_convnet", "model.func.layer1_convnet"], "0"),
    ("allegro_ckpt", ["model.func.allegro.tps.0", "model.func.allegro.tps.1"], "0"),
])
def test_trained_model_through_the_cli(request, field_xyz, tmp_path, fixture, layers,
                                       model_block) -> None:
    out = tmp_path / "report"
    assert main(["analyze", "--model", str(request.getfixturevalue(fixture)), "--xyz",
                 str(field_xyz["test"]), "--trust-model-code", "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert all(name in text for name in layers) and "composition baseline MAE" in text
    assert "holds scalars only" in text  # the last layer is shown, not used for the columns
    verdict = text.split("## Verdict")[1].split("\n## ")[0]  # the verdict opens the report
    assert text.index("## Verdict") < text.index("## Metrics")
    assert "(least squares on element counts, fitted on these molecules)" in verdict
    assert "depends" in verdict or "barely uses" in verdict  # ablation numbers were stated
    rows = _rows(out)
    chosen = [row for row in rows if row["block"] == model_block]
    assert [row["l"] for row in chosen] == ["0", "1", "2"]
    for row in chosen:
        assert np.isfinite(float(row["ablation_rel_mse"])) and float(row["grad_abs"]) >= 0
        assert float(row["relative_scale"]) > 0 and row["switched_off"] in ("True", "False")
    assert all(row["ablation_rel_mse"] == "nan" for row in rows if row["block"] != model_block)
    assert (out / "projections_block0.png").exists() and any(out.glob("extremes_*.png"))


def _one_error(capsys) -> str:
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1, errors
    return errors[0]


def test_bad_input_one_line_nothing_written(nequip_ckpt, field_xyz, tmp_path, capsys) -> None:
    out = tmp_path / "report"
    base = ["analyze", "--model", str(nequip_ckpt), "--out", str(out)]
    chlorine = tmp_path / "cl.xyz"
    write(chlorine, [Atoms("CH4", positions=np.eye(5, 3), info={"REF_energy": -1.0}),
                     Atoms("Cl2", positions=np.eye(2, 3), info={"REF_energy": -1.0})],
          format="extxyz")
    periodic = tmp_path / "pbc.xyz"
    write(periodic, [Atoms("CH4", positions=np.eye(5, 3), cell=np.eye(3) * 9, pbc=True,
                           info={"REF_energy": -1.0})], format="extxyz")
    truncated = tmp_path / "cut.ckpt"
    truncated.write_bytes(nequip_ckpt.read_bytes()[:5000])
    cases = [
        (["--xyz", str(field_xyz["test"])], "add --trust-model-code"),
        (["--xyz", str(chlorine), "--trust-model-code"], "Cl in frame(s) 1"),
        (["--xyz", str(periodic), "--trust-model-code"], "frame 0 (CH4) is periodic"),
        (["--xyz", str(field_xyz["test"]), "--trust-model-code", "--energy-key", "U0"],
         "no finite energy under 'U0'"),
        (["--xyz", str(field_xyz["test"]), "--family", "mace"], "looks like a NequIP"),
        (["--xyz", str(field_xyz["test"]), "--trust-model-code", "--layers", "nope"],
         "nope"),
    ]
    for extra, message in cases:
        assert main([*base, *extra]) == 2
        assert message in _one_error(capsys)
        assert not out.exists()
    assert main(["analyze", "--model", str(truncated), "--xyz", str(field_xyz["test"]),
                 "--trust-model-code", "--out", str(out)]) == 2
    assert "truncated or damaged" in _one_error(capsys) and not out.exists()


def test_nequip_package_gives_the_checkpoint_numbers(nequip_ckpt, field_xyz, tmp_path) -> None:
    """`nequip-package build` of the checkpoint: detected as a package, same numbers."""
    import subprocess
    import sys

    package = tmp_path / "model.nequip.zip"
    build = subprocess.run([str(Path(sys.executable).with_name("nequip-package")), "build",
                            str(nequip_ckpt), str(package)], capture_output=True, text=True,
                           check=False)
    assert build.returncode == 0, build.stderr[-2000:]
    for source, out in ((nequip_ckpt, tmp_path / "ckpt"), (package, tmp_path / "package")):
        assert main(["analyze", "--model", str(source), "--xyz", str(field_xyz["test"]),
                     "--trust-model-code", "--out", str(out), "--layers",
                     "model.func.layer1_convnet"]) == 0
    assert "a NequIP package" in (tmp_path / "package" / "report.md").read_text()
    numbers = [[row[k] for k in ("l", "variance_share", "ablation_rel_mse", "grad_abs")]
               for row in _rows(tmp_path / "package")]
    assert numbers == [[row[k] for k in ("l", "variance_share", "ablation_rel_mse", "grad_abs")]
                       for row in _rows(tmp_path / "ckpt")]
