"""FusedEdgeMessage: the same function, gradients and parameters as the stock-e3nn message step."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from irrepscope.model import ModelConfig, build_model
from irrepscope.model.message import E3nnEdgeMessage
from irrepscope.model.message_steps import convert_state_dict, make_edge_message
from irrepscope.model.tensor_product import (
    FusedEdgeMessage,
    convert_e3nn_to_fused,
    convert_fused_to_e3nn,
)
from irrepscope.testing import (
    REFERENCE_MODELS,
    assert_equivariant,
    assert_fused_model_agrees,
    assert_messages_agree,
    float64_message_pair,
    message_block_irreps,
    random_message_inputs,
)

# the five configurations of the training benchmark: orders, h
CONFIGS = [(orders, hidden) for orders, hidden, _ in REFERENCE_MODELS]
TABLE1 = Path(__file__).resolve().parents[2] / "configs" / "table1"
ATOL = 1e-10


def message_pair(irreps_in, irreps_sh, irreps_out, hidden, seed=0):
    """An e3nn message (float64, random weights) and the fused one converted from it."""
    return float64_message_pair("fused", irreps_in, irreps_sh, irreps_out, hidden, seed)


@pytest.mark.parametrize("block", ["input", "hidden"])
@pytest.mark.parametrize(("orders", "hidden"), CONFIGS, ids=lambda v: str(v))
def test_outputs_and_gradients_match_e3nn(orders, hidden, block):
    ref, fused = message_pair(*message_block_irreps(orders, hidden, block), hidden)
    assert_messages_agree(ref, fused, random_message_inputs(ref), ATOL,
                          weight_out_columns=fused.column_permutation)


def test_general_multiplicities_and_repeated_irreps():
    """Gate-style outputs (several 0e entries), SH with multiplicity > 1, odd input parities."""
    ref, fused = message_pair("3x0e+2x1o+2x0e+1x2o", "2x0e+2x1o+1x2e", "4x0e+3x1o+2x0e+2x2e", 5)
    inputs = random_message_inputs(ref)
    expected, actual = ref(*inputs), fused(*inputs)
    torch.testing.assert_close(actual, expected, atol=ATOL, rtol=0)
    cotangent = torch.randn_like(expected)
    for g_ref, g in zip(torch.autograd.grad(expected, inputs, cotangent),
                        torch.autograd.grad(actual, inputs, cotangent), strict=True):
        torch.testing.assert_close(g, g_ref, atol=ATOL, rtol=0)


def test_conversion_round_trip_parameters_and_init_statistics():
    irreps_in, irreps_sh, irreps_out = message_block_irreps([0, 1, 2], 32, "hidden")
    torch.manual_seed(3)
    fused = FusedEdgeMessage(irreps_in, irreps_sh, irreps_out, 20, 32)
    ref = E3nnEdgeMessage(irreps_in, irreps_sh, irreps_out, 20, 32)
    assert ([p.shape for p in fused.parameters()] == [p.shape for p in ref.parameters()])
    assert sum(p.numel() for p in fused.parameters()) == 20 * 32 + 32 * 11264
    for p_fused, p_ref in zip(fused.parameters(), ref.parameters(), strict=True):  # N(0, 1)
        assert abs(p_fused.mean().item()) < 0.05 and abs(p_fused.std().item() - 1) < 0.05
        assert abs(p_ref.std().item() - 1) < 0.05
    ref.load_state_dict(convert_fused_to_e3nn(fused))
    back = convert_e3nn_to_fused(ref)
    for key, value in fused.state_dict().items():
        assert torch.equal(back[key], value)
    assert sorted(fused.column_permutation.tolist()) == list(range(fused.weight_numel))
    assert isinstance(make_edge_message("fused", irreps_in, irreps_sh, irreps_out, 20, 32),
                      FusedEdgeMessage)


@pytest.mark.parametrize("block", ["input", "hidden"])
@pytest.mark.parametrize("orders", [[0, 1, 2], [0, 3, 4, 5, 6], [0, 1, 2, 10]], ids=str)
def test_message_is_equivariant(orders, block):
    irreps_in, irreps_sh, irreps_out = message_block_irreps(orders, 3, block)
    torch.manual_seed(0)
    fused = FusedEdgeMessage(irreps_in, irreps_sh, irreps_out, 20, 3).double()
    basis = torch.randn(5, 20, dtype=torch.float64)  # invariant edge lengths
    joint = torch.randn(5, irreps_in.dim + irreps_sh.dim, dtype=torch.float64)

    def message(xy):
        return fused(xy[:, :irreps_in.dim], xy[:, irreps_in.dim:], basis)

    assert_equivariant(message, irreps_in + irreps_sh, irreps_out, joint)


def table1_order_sets() -> list[tuple[list[int], int]]:
    files = sorted(TABLE1.glob("*.yaml"))
    assert len(files) == 11, f"expected the 11 rows of Table 1 in {TABLE1}, found {len(files)}"
    sets = {}
    for path in files:
        model = yaml.safe_load(path.read_text())["model"]
        sets[tuple(model["orders"])] = model["hidden"]
    return [(list(k), v) for k, v in sets.items()]


def test_every_table1_order_set():
    """Fused == e3nn (input and hidden blocks, h=2) for each distinct L of configs/table1/."""
    order_sets = table1_order_sets()
    assert len(order_sets) == 9
    for orders, _ in order_sets:
        for block in ("input", "hidden"):
            ref, fused = message_pair(*message_block_irreps(orders, 2, block), 2)
            inputs = random_message_inputs(ref, num_edges=4)
            torch.testing.assert_close(fused(*inputs), ref(*inputs), atol=ATOL, rtol=0)


def test_no_edges():
    ref, fused = message_pair(*message_block_irreps([0, 1, 2], 4, "hidden"), 4)
    inputs = random_message_inputs(ref, num_edges=0)
    out = fused(*inputs)
    assert out.shape == (0, ref.irreps_out.dim)
    out.sum().backward()
    assert fused.weight_out.grad is not None and not fused.weight_out.grad.any()


def test_torch_compile_fullgraph_has_no_graph_breaks():
    ref, fused = message_pair(*message_block_irreps([0, 1, 2], 4, "hidden"), 4)
    inputs = random_message_inputs(ref)
    compiled = torch.compile(fused, fullgraph=True, backend="aot_eager")
    out = compiled(*inputs)
    torch.testing.assert_close(out, ref(*inputs), atol=ATOL, rtol=0)
    grad = torch.autograd.grad(out.square().sum(), inputs[0])[0]
    grad_ref = torch.autograd.grad(ref(*inputs).square().sum(), inputs[0])[0]
    torch.testing.assert_close(grad, grad_ref, atol=ATOL, rtol=0)


# all five benchmark configs (the two largest stock-e3nn models take ~40 s each in float64)
@pytest.mark.parametrize(("orders", "hidden"), CONFIGS, ids=lambda v: str(v))
def test_whole_model_energies_and_gradients_on_qm9(orders, hidden, qm9_molecules, make_batch):
    """build_model e3nn vs fused after weight conversion: energies, forces, parameter grads."""
    batch = make_batch(qm9_molecules[:3])  # HCN, oxirane, O=COCC#N: 15 atoms, 28 edges
    torch.manual_seed(0)
    models = {}
    for kind in ("e3nn", "fused"):
        config = ModelConfig(orders=orders, hidden=hidden, sh_backend="e3nn", tensor_product=kind,
                             aggregate="never")
        models[kind] = build_model(config, dtype=torch.float64)
    models["fused"].load_state_dict(convert_state_dict(models["e3nn"], to="fused"))
    assert (sum(p.numel() for p in models["fused"].parameters())
            == sum(p.numel() for p in models["e3nn"].parameters()))
    assert_fused_model_agrees(models["e3nn"], models["fused"], batch, ATOL)


def test_multiply_add_count_of_a_hidden_block():
    """Radial: 20 h + h weights; TP: per path u w d1 (x with weights) + w d1 d3 (with S) + CG."""
    irreps_in, irreps_sh, irreps_out = message_block_irreps([0, 1, 2], 32, "hidden")
    fused = FusedEdgeMessage(irreps_in, irreps_sh, irreps_out, 20, 32)
    macs = fused.multiply_adds_per_edge()
    assert macs["radial"] == 20 * 32 + 32 * 11264
    dims = [(2 * irreps_in[p.i_in].ir.l + 1, 2 * irreps_out[p.i_out].ir.l + 1)
            for p in fused.paths]
    assert len(dims) == 11
    nonzeros = int((fused.cg_matrix != 0).sum())
    assert 0 < nonzeros < fused.cg_matrix.numel()
    assert macs["tensor_product"] == sum(32 * 32 * d1 + 32 * d1 * d3 for d1, d3 in dims) + nonzeros


def test_hidden_blocks_share_one_sh_operand(qm9_molecules, make_batch, monkeypatch):
    """The SH @ CG product is computed once per distinct message step, with the same energies."""
    batch = make_batch(qm9_molecules[:3])
    torch.manual_seed(0)
    model = build_model(ModelConfig(orders=[0, 1, 2], hidden=4, num_layers=3,
                                    aggregate="never"), dtype=torch.float64)
    calls = []
    original = FusedEdgeMessage.edge_operand

    def counted(self, sh, aggregated=False):
        calls.append(self.edge_operand_key())
        return original(self, sh, aggregated)

    monkeypatch.setattr(FusedEdgeMessage, "edge_operand", counted)
    shared = model(batch)
    assert len(model.blocks) == 5 and len(calls) == 2  # input block, then one for 4 hidden blocks
    assert len(set(calls)) == 2
    monkeypatch.setattr(FusedEdgeMessage, "edge_operand_key", lambda self, aggregated=False: None)
    calls.clear()
    unshared = model(batch)
    assert len(calls) == 5
    torch.testing.assert_close(shared, unshared, atol=1e-12, rtol=0)
