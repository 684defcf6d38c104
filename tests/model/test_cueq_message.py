"""CueqEdgeMessage (cuequivariance-torch): e3nn's function, gradients and checkpoint layout."""

from __future__ import annotations

import importlib.util

import pytest
import torch

pytest.importorskip("cuequivariance_torch", reason="cuequivariance-torch is not installed")

from irrepscope.errors import ConfigError  # noqa: E402
from irrepscope.model import ModelConfig, build_model, cueq_message  # noqa: E402
from irrepscope.model.cueq_message import CueqEdgeMessage, cueq_kernels_available  # noqa: E402
from irrepscope.model.message import E3nnEdgeMessage  # noqa: E402
from irrepscope.model.message_steps import convert_state_dict, make_edge_message  # noqa: E402
from irrepscope.testing import (  # noqa: E402
    REFERENCE_MODELS,
    assert_equivariant,
    assert_fused_model_agrees,
    assert_messages_agree,
    float64_message_pair,
    message_block_irreps,
    random_message_inputs,
)

CONFIGS = [(orders, hidden) for orders, hidden, _ in REFERENCE_MODELS]
ATOL = 1e-10


def float64_pair(irreps_in, irreps_sh, irreps_out, hidden, seed=0):
    """A float64 e3nn message with random weights and a cueq message loaded from its state dict."""
    ref, cueq = float64_message_pair("cueq", irreps_in, irreps_sh, irreps_out, hidden, seed)
    assert isinstance(cueq, CueqEdgeMessage)
    return ref, cueq


@pytest.mark.parametrize("block", ["input", "hidden"])
@pytest.mark.parametrize(("orders", "hidden"), CONFIGS, ids=lambda v: str(v))
def test_outputs_and_gradients_match_e3nn(orders, hidden, block):
    ref, cueq = float64_pair(*message_block_irreps(orders, hidden, block), hidden)
    assert_messages_agree(ref, cueq, random_message_inputs(ref), ATOL)


def test_checkpoint_layout_is_e3nns():
    """Same state-dict keys and shapes as E3nnEdgeMessage; no coefficient buffers saved."""
    irreps = message_block_irreps([0, 1, 2], 4, "hidden")
    ref = E3nnEdgeMessage(*irreps, 20, 4)
    cueq = make_edge_message("cueq", *irreps, 20, 4)
    assert isinstance(cueq, CueqEdgeMessage)
    assert {k: v.shape for k, v in cueq.state_dict().items()} == \
        {k: v.shape for k, v in ref.state_dict().items()}
    assert sum(p.numel() for p in cueq.parameters()) == sum(p.numel() for p in ref.parameters())


def test_message_is_equivariant():
    irreps_in, irreps_sh, irreps_out = message_block_irreps([0, 3, 4, 5, 6], 2, "hidden")
    _, cueq = float64_pair(irreps_in, irreps_sh, irreps_out, 2)
    basis = torch.randn(5, 20, dtype=torch.float64)  # invariant edge lengths
    joint = torch.randn(5, irreps_in.dim + irreps_sh.dim, dtype=torch.float64)

    def message(xy):
        return cueq(xy[:, :irreps_in.dim], xy[:, irreps_in.dim:], basis)

    assert_equivariant(message, irreps_in + irreps_sh, irreps_out, joint)


def test_missing_package_is_a_config_error(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def find_spec(name):
        return None if name == "cuequivariance_torch" else real_find_spec(name)

    monkeypatch.setattr(cueq_message.importlib.util, "find_spec", find_spec)
    with pytest.raises(ConfigError, match="pip install cuequivariance-torch"):
        make_edge_message("cueq", *message_block_irreps([0, 1], 2, "hidden"), 20, 2)
    with pytest.raises(ConfigError, match="'cueq' needs cuequivariance-torch"):  # at config load
        ModelConfig.from_dict({"orders": [0, 1], "hidden": 2, "tensor_product": "cueq"})


def cueq_and_fused_models(orders, hidden, device="cpu"):
    torch.manual_seed(0)
    config = ModelConfig(orders=orders, hidden=hidden, sh_backend="torch", tensor_product="cueq")
    cueq = build_model(config, dtype=torch.float64).to(device)
    fused = build_model(ModelConfig(orders=orders, hidden=hidden, sh_backend="torch",
                                    tensor_product="fused"), dtype=torch.float64).to(device)
    fused.load_state_dict(convert_state_dict(cueq, to="fused"))
    back = convert_state_dict(fused, to="cueq")
    assert all(torch.equal(back[k], v) for k, v in cueq.state_dict().items())
    return cueq, fused


@pytest.mark.parametrize(("orders", "hidden"), CONFIGS, ids=lambda v: str(v))
def test_whole_model_matches_fused_on_qm9(orders, hidden, qm9_molecules, make_batch):
    """Energies, forces, parameter gradients on real molecules (fused == e3nn: tested apart)."""
    cueq, fused = cueq_and_fused_models(orders, hidden)
    assert_fused_model_agrees(cueq, fused, make_batch(qm9_molecules[:3]), ATOL)


@pytest.mark.gpu
@pytest.mark.parametrize(("orders", "hidden"), CONFIGS, ids=lambda v: str(v))
def test_cuda_kernel_matches_fused_on_qm9(orders, hidden, qm9_molecules, make_batch):
    """The same check on a CUDA device through cuequivariance's fused kernel."""
    if not cueq_kernels_available():
        pytest.skip("cuequivariance-ops-torch-cu12 (the CUDA kernels) is not installed")
    cueq, fused = cueq_and_fused_models(orders, hidden, device="cuda")
    assert all(m.tp_kernel is not None for m in cueq.modules() if isinstance(m, CueqEdgeMessage))
    assert_fused_model_agrees(cueq, fused, make_batch(qm9_molecules[:3]).to("cuda"), ATOL)
