"""The NequIP adapter: captured features match their irreps, invariant views do not rotate,
bad hooks are refused, and the probe feeds the generic analysis."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import molecule
from scipy.spatial.transform import Rotation

from irrepscope.analysis.embeddings import graph_embeddings_by_l
from irrepscope.analysis.features import analyse_features, load_features
from irrepscope.errors import ConfigError, DataError

nequip_adapter = pytest.importorskip("irrepscope.analysis.adapters.nequip")
pytest.importorskip("nequip")
pytestmark = pytest.mark.usefixtures("one_thread")

NAMES = ["CH4", "H2O", "NH3", "CH3OH", "CH3CH2OH", "HCN", "CH3CN", "HCOOH", "C2H4", "C2H6",
         "CH2O", "CO2", "N2H4", "C2H2", "H2O2", "CH3NH2", "HCONH2", "CH3CHO", "C3H8", "HF",
         "CH3COOH", "C2H5OH", "CH3OCH3", "NH2CH2CH2OH"]


@pytest.fixture(scope="module")
def nequip_model() -> torch.nn.Module:
    """A small random NequIP model (3 layers, l_max 2, with parity: 1o and 1e both present)."""
    from nequip.model import NequIPGNNModel

    dtype, rng = torch.get_default_dtype(), torch.random.get_rng_state()
    with nequip_adapter.nequip_global_state():
        model = NequIPGNNModel(seed=1, model_dtype="float64",
                               type_names=["H", "C", "N", "O", "F"], r_max=4.0, num_layers=3,
                               l_max=2, num_features=4, radial_mlp_width=8,
                               per_type_energy_scales=1.0, per_type_energy_shifts=0.0,
                               avg_num_neighbors=4.0)
    # nequip's global state (float64 default dtype, seed 123) must not leak into other tests
    assert torch.get_default_dtype() == dtype
    assert torch.equal(torch.random.get_rng_state(), rng)
    return model.eval()


@pytest.fixture(scope="module")
def molecules() -> list:
    return [molecule(name) for name in NAMES if name in _available()]


def _available() -> set[str]:
    from ase.collections import g2

    return set(g2.names)


def test_captured_features_match_irreps_and_invariants_do_not_rotate(nequip_model,
                                                                     molecules) -> None:
    features = nequip_adapter.capture_features(nequip_model, molecules, batch_size=7)
    assert [layer.name for layer in features.layers] == ["model.func.layer0_convnet",
                                                         "model.func.layer1_convnet"]
    for layer in features.layers:
        assert layer.features.shape == (len(molecules), layer.irreps.dim)
    assert any(ir.l == 2 for _, ir in features.layers[-1].irreps)
    turned = []
    for i, atoms in enumerate(molecules):
        copy = atoms.copy()
        copy.positions = atoms.positions @ Rotation.random(random_state=i).as_matrix().T
        turned.append(copy)
    rotated = nequip_adapter.capture_features(nequip_model, turned, batch_size=5)
    np.testing.assert_allclose(rotated.predictions, features.predictions, atol=1e-10)
    for a, b in zip(features.layers, rotated.layers, strict=True):
        views_a = graph_embeddings_by_l(a.features, a.irreps)
        views_b = graph_embeddings_by_l(b.features, b.irreps)
        for l in views_a:
            np.testing.assert_allclose(views_b[l]["invariant"], views_a[l]["invariant"],
                                       atol=1e-9, err_msg=f"{a.name} l={l}")
        assert not np.allclose(views_b[1]["raw"], views_a[1]["raw"], atol=1e-6)


def test_bad_hooks_and_molecules(nequip_model, molecules) -> None:
    with pytest.raises(ConfigError, match=r"module 'model.func.type_embed.embed_module' "
                                          r"\(Embedding\) declares no irreps"):
        nequip_adapter.capture_features(nequip_model, molecules,
                                        layers=["model.func.type_embed.embed_module"])
    with pytest.raises(ConfigError, match="has no module 'nope'"):
        nequip_adapter.capture_features(nequip_model, molecules, layers=["nope"])
    with pytest.raises(DataError,
                       match=r"elements the model does not know \(Cl in frame\(s\) 1\)"):
        nequip_adapter.capture_features(nequip_model, [molecules[0], molecule("Cl2")])


def test_probe_feeds_the_generic_analysis(nequip_model, molecules, tmp_path) -> None:
    targets = np.random.default_rng(0).normal(size=len(molecules))
    layers = ["model.func.layer1_convnet"]  # one layer keeps the PHATE part short
    features = nequip_adapter.capture_features(nequip_model, molecules, layers=layers,
                                               targets=targets)
    probe = nequip_adapter.NequIPProbe(nequip_model, molecules, targets, layers, batch_size=9)
    mse, ablated = probe.ablation([0, 1, 2])
    np.testing.assert_allclose(mse, np.mean((features.predictions - targets) ** 2))
    assert set(ablated) == {0, 1, 2} and ablated[0] != 0
    analysis = analyse_features(features, tmp_path / "nequip", probe=probe, progress=False)
    last = [row for row in analysis.table if row["block"] == 0]
    assert [row["l"] for row in last] == [0, 1, 2]
    assert all(np.isfinite(row["ablation_rel_mse"]) and row["grad_abs"] >= 0 for row in last)
    assert sum(row["grad_x_input_share"] for row in last) == pytest.approx(1.0)
    assert (tmp_path / "nequip" / "utilization.csv").exists()


def test_worked_example_trains_on_irrepscope_data(qm9_slice, tmp_path) -> None:
    from irrepscope.analysis.adapters.nequip_demo import run_demo

    folder, cache = qm9_slice
    metrics = run_demo(tmp_path / "demo", molecules=40, epochs=3, minutes=1.0,
                       qm9_dir=str(folder), data_dir=str(cache), analyse=False)
    assert metrics["train"] == 32 and metrics["test"] == 8 and metrics["epochs"] == 3
    assert metrics["train_mse_per_epoch"][-1] < metrics["train_mse_per_epoch"][0]
    features = load_features(tmp_path / "demo" / "features.npz")
    assert [layer.features.shape[0] for layer in features.layers] == [8, 8]
    assert np.isfinite(metrics["composition_baseline_test_mae_eV"])
