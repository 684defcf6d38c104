"""The MACE adapter on MACE models built by mace-torch itself (runs in .venv-mace: mace-torch
0.3.16 pins e3nn 0.4.4): message layout converted to e3nn's and checked by rotation, a
MACE-MP-0 "medium"-like model's layers and sizes, and the environment left as it was."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from ase.build import molecule
from e3nn import o3
from scipy.spatial.transform import Rotation

pytest.importorskip("mace", reason="needs mace-torch 0.3.16 (e3nn 0.4.4): `make test` runs this "
                                   "module in .venv-mace")

from irrepscope.analysis.adapters.hooks import (  # noqa: E402
    AdapterProbe,
    HookPoint,
    capture_features,
)
from irrepscope.analysis.adapters.mace import MACEAdapter, mace_environment  # noqa: E402
from irrepscope.model.dtype import default_dtype  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
NAMES = ["CH4", "H2O", "NH3", "CH3OH", "HCN", "CH3CN", "HCOOH", "C2H4", "H2CO", "N2H4", "HF",
         "CH3CHO", "C3H8", "CH3COOH", "CH3OCH3"]
ELEMENTS = (1, 6, 7, 8, 9)


def build_mace(channels: int, max_ell: int, correlation: int, max_l: int = 1,
               num_interactions: int = 2, r_max: float = 5.0, seed: int = 0) -> torch.nn.Module:
    """An untrained ScaleShiftMACE as mace_run_train builds it (residual interaction blocks,
    hidden irreps channels x 0e..max_l, float64)."""
    from mace import modules

    hidden = o3.Irreps("+".join(f"{channels}x{l}{'e' if l % 2 == 0 else 'o'}"
                                for l in range(max_l + 1)))
    block = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
    torch.manual_seed(seed)
    with mace_environment(), default_dtype(torch.float64):
        return modules.ScaleShiftMACE(
            r_max=r_max, num_bessel=8, num_polynomial_cutoff=5, max_ell=max_ell,
            interaction_cls=block, interaction_cls_first=block,
            num_interactions=num_interactions, num_elements=len(ELEMENTS),
            hidden_irreps=hidden, MLP_irreps=o3.Irreps("16x0e"),
            atomic_energies=np.zeros(len(ELEMENTS)), avg_num_neighbors=8.0,
            atomic_numbers=list(ELEMENTS), correlation=correlation,
            gate=torch.nn.functional.silu, atomic_inter_scale=1.0,
            atomic_inter_shift=0.0).eval()


@pytest.fixture(scope="module")
def molecules() -> list:
    return [molecule(name) for name in NAMES]


def _rotated(molecules: list, seed: int) -> tuple[list, torch.Tensor]:
    matrix = Rotation.random(random_state=seed).as_matrix()
    turned = []
    for atoms in molecules:
        copy = atoms.copy()
        copy.positions = atoms.positions @ matrix.T
        turned.append(copy)
    return turned, torch.as_tensor(matrix)


def test_messages_rotate_with_their_irreps_after_conversion(molecules) -> None:
    """interactions.0's pooled messages rotate by their irreps' Wigner matrices once converted
    (error ~1e-12); a plain reshape of MACE's layout, same column count, does not (~0.1-1)."""
    adapter = MACEAdapter(build_mace(8, 2, 2, max_l=2), "untrained")
    point = adapter.points(["interactions.0"])[0]
    assert str(point.irreps) == "8x0e+8x1o+8x2e"
    reshaped = HookPoint("reshape", point.module, point.irreps,
                         read=lambda out: out[0].reshape(out[0].shape[0], -1),
                         write=lambda out, new: out)
    adapter.points = lambda layers=None: [point, reshaped]  # both views of the same pass
    turned, matrix = _rotated(molecules, 3)
    before, after = capture_features(adapter, molecules), capture_features(adapter, turned)
    wigner = point.irreps.D_from_matrix(matrix).numpy()
    for layer_before, layer_after, worst in zip(before.layers, after.layers, (1e-9, None),
                                                strict=True):
        error = np.abs(layer_after.features - layer_before.features @ wigner.T).max()
        scale = np.abs(layer_before.features).max()
        if worst is not None:
            assert error < worst * max(scale, 1)
        else:
            assert error > 1e-2 * scale
    np.testing.assert_allclose(after.predictions, before.predictions, atol=1e-9)


def test_mace_import_leaves_the_environment_alone() -> None:
    """`import mace` sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD for the process; inside the adapter's
    mace_environment() it is restored (a fresh interpreter, where mace is not imported yet)."""
    code = ("import os; from irrepscope.analysis.adapters.mace import mace_environment\n"
            "with mace_environment():\n    import mace\n    inside = os.environ.get("
            "'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD')\n"
            "print(inside, os.environ.get('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'))")
    env = {k: v for k, v in os.environ.items() if k != "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["1", "None"]


def test_probe_fills_the_last_layer_with_l_above_zero(molecules) -> None:
    """Ablation and gradients fill every l of the last layer with l > 0 (products.0)."""
    adapter = MACEAdapter(build_mace(8, 2, 2), "untrained")
    features = capture_features(adapter, molecules)
    assert [layer.name for layer in features.layers] == ["products.0", "products.1"]
    assert [str(layer.irreps) for layer in features.layers] == ["8x0e+8x1o", "8x0e"]
    targets = features.predictions + np.random.default_rng(0).normal(size=len(molecules))
    probe = AdapterProbe(adapter, molecules, targets)
    mse, ablated = probe.ablation([0, 1])
    layer, grads = probe.input_gradients()
    assert layer == 0 and set(grads) == {0, 1} and np.isfinite(list(ablated.values())).all()
    assert torch.get_default_dtype() == torch.float32


def _mp0_medium_like() -> MACEAdapter:
    """MACE-MP-0 "medium" settings: 128 channels, hidden 0e+1o, max_ell 3, correlation 3, two
    interactions, r_max 6 Å (untrained; QM9's five elements instead of 89)."""
    return MACEAdapter(build_mace(128, 3, 3, max_l=1, r_max=6.0), "MACE-MP-0 medium-like")


def test_foundation_model_layout(molecules) -> None:
    adapter = _mp0_medium_like()
    names = {p.name: str(p.irreps) for p in adapter.hook_points()}
    assert names == {"interactions.0": "128x0e+128x1o+128x2e+128x3o",
                     "products.0": "128x0e+128x1o",
                     "interactions.1": "128x0e+128x1o+128x2e+128x3o",
                     "products.1": "128x0e"}
    features = capture_features(adapter, molecules[:6], layers=list(names), batch_size=3)
    assert [layer.features.shape for layer in features.layers] == [
        (6, 128 * 16), (6, 512), (6, 128 * 16), (6, 128)]


@pytest.mark.slow
def test_foundation_model_time_and_memory_on_1000_molecules(tmp_path) -> None:
    """Time and peak memory of capture + ablation (l = 0, 1) + input gradients on 1,000 QM9
    molecules (a seeded sample; docs/analysis.md records the numbers; --runslow -s)."""
    from irrepscope.data import load_dataset
    from irrepscope.data.export import molecule_frames
    from irrepscope.data.sample import write_qm9_sample

    folder = write_qm9_sample(tmp_path / "qm9", 1000, seed=0)
    dataset = load_dataset(qm9_dir=folder, data_dir=tmp_path / "cache", progress=False)
    many = molecule_frames(dataset, np.arange(len(dataset)), "REF_energy")
    adapter = _mp0_medium_like()
    start = time.perf_counter()
    features = capture_features(adapter, many, batch_size=32)
    captured = time.perf_counter() - start
    probe = AdapterProbe(adapter, many, features.predictions + 1.0)
    probe.ablation([0, 1])
    probe.input_gradients()
    total = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    atoms = sum(len(a) for a in many)
    print(f"\nMACE-MP-0 medium-like, {len(many)} QM9 molecules ({atoms} atoms), batch 32, "
          f"{torch.get_num_threads()} thread(s): capture {captured:.1f} s, capture + ablation "
          f"+ gradients {total:.1f} s, peak RSS {peak:.0f} MiB")
    assert features.layers[0].features.shape == (len(many), 512)
