"""Aggregate-then-weight: e3nn's per-atom message sums, gradients, symmetry, checkpoints."""

from __future__ import annotations

import pytest
import torch

from irrepscope.model import ModelConfig, build_model
from irrepscope.model.aggregate import AggregatedEdgeMessage
from irrepscope.model.message_cost import (
    aggregated_cost,
    break_even_degree,
    pair_sizes,
    per_edge_cost,
    prefers_aggregation,
)
from irrepscope.model.message_steps import convert_state_dict
from irrepscope.model.tensor_product import FusedEdgeMessage
from irrepscope.testing import (
    assert_equivariant,
    assert_fused_model_agrees,
    float64_message_pair,
    message_block_irreps,
)

from .test_tensor_product import table1_order_sets

ATOL = 1e-10


def star_and_ring_graph(num_nodes: int = 12, hub_degree: int = 9,
                        seed: int = 0) -> torch.Tensor:
    """edge_index [2, E]: a hub with ``hub_degree`` incoming edges, a ring, two atoms with none."""
    hub, isolated = 0, {num_nodes - 1, num_nodes - 2}
    ring = [i for i in range(1, num_nodes) if i not in isolated]
    edges = [(s, hub) for s in range(1, hub_degree + 1)]
    edges += [(ring[k], ring[(k + 1) % len(ring)]) for k in range(len(ring))]
    edges += [(num_nodes - 1, ring[0]), (hub, ring[2])]  # isolated atoms still send
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(edges), generator=g)
    return torch.tensor(edges, dtype=torch.long)[order].T.contiguous()


def radius_like_graph(num_nodes: int = 10, seed: int = 1) -> torch.Tensor:
    """edge_index [2, E]: every ordered pair of distinct atoms (in-degree N - 1), shuffled."""
    pairs = [(s, t) for s in range(num_nodes) for t in range(num_nodes) if s != t]
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed))
    return torch.tensor(pairs, dtype=torch.long)[order].T.contiguous()


def node_inputs(message, edge_index: torch.Tensor, num_nodes: int, seed: int = 3):
    """Float64 [x [N, in], sh [E, sh], radial basis [E, 20]], all requiring gradients."""
    g = torch.Generator().manual_seed(seed)
    num_edges = edge_index.shape[1]
    shapes = [(num_nodes, message.irreps_in.dim), (num_edges, message.irreps_sh.dim),
              (num_edges, 20)]
    return [torch.randn(*s, generator=g, dtype=torch.float64).requires_grad_() for s in shapes]


def assert_sums_agree(reference, aggregated, edge_index, inputs, atol=ATOL) -> None:
    """Per-atom sums and the gradients of x, sh, basis, weight_in, weight_out agree."""
    x, sh, basis = inputs
    expected = reference.aggregate(x, edge_index, sh, basis)
    actual = aggregated.aggregate(x, edge_index, sh, basis)
    torch.testing.assert_close(actual, expected, atol=atol, rtol=0)
    cotangent = torch.randn_like(expected)
    grads_ref = list(torch.autograd.grad(expected, [*inputs, *reference.parameters()], cotangent))
    grads = torch.autograd.grad(actual, [*inputs, *aggregated.parameters()], cotangent)
    grads_ref[-1] = grads_ref[-1][:, aggregated.column_permutation]
    for name, g_ref, g in zip(["x", "sh", "basis", "weight_in", "weight_out"], grads_ref, grads,
                              strict=True):
        torch.testing.assert_close(g, g_ref, atol=atol, rtol=0, msg=f"gradient of {name}")


def aggregated_pair(orders, hidden, block, seed=0):
    reference, aggregated = float64_message_pair(
        "aggregate", *message_block_irreps(orders, hidden, block), hidden, seed)
    aggregated.mode = "always"
    return reference, aggregated


def test_every_table1_order_set_with_gradients():
    """Equal to e3nn (values, all gradients) for each L of configs/table1/, both blocks, on a
    bond-like graph (a hub, a ring, atoms without incoming edges) and a radius-like one."""
    graphs = [(star_and_ring_graph(12), 12), (radius_like_graph(8), 8)]
    for orders, _ in table1_order_sets():
        for block in ("input", "hidden"):
            reference, aggregated = aggregated_pair(orders, 2, block)
            for edge_index, num_nodes in graphs:
                inputs = node_inputs(reference, edge_index, num_nodes)
                assert_sums_agree(reference, aggregated, edge_index, inputs)


@pytest.mark.parametrize("block", ["input", "hidden"])
def test_canonical_width_and_atoms_without_edges(block):
    """L=[0, 1, 2], h=32; atoms with no incoming edges get exactly zero."""
    reference, aggregated = aggregated_pair([0, 1, 2], 32, block)
    edge_index = star_and_ring_graph()
    inputs = node_inputs(reference, edge_index, 12)
    assert_sums_agree(reference, aggregated, edge_index, inputs)
    out = aggregated.aggregate(*[inputs[0], edge_index, *inputs[1:]])
    assert not out[-2:].any() and out[0].abs().sum() > 0


def test_general_multiplicities_and_no_edges_at_all():
    """Gate-style repeated 0e outputs, SH multiplicity 2; an edgeless graph gives zeros."""
    reference, aggregated = float64_message_pair(
        "aggregate", "3x0e+2x1o+2x0e+1x2o", "2x0e+2x1o+1x2e", "4x0e+3x1o+2x0e+2x2e", 5)
    aggregated.mode = "always"
    edge_index = radius_like_graph(6)
    assert_sums_agree(reference, aggregated, edge_index, node_inputs(reference, edge_index, 6))
    empty = torch.zeros(2, 0, dtype=torch.long)
    x, sh, basis = node_inputs(reference, empty, 4)
    out = aggregated.aggregate(x, empty, sh, basis)
    assert out.shape == (4, reference.irreps_out.dim) and not out.any()


@pytest.mark.parametrize("orders", [[0, 1, 2], [0, 3, 4, 5, 6]], ids=str)
def test_aggregated_step_is_equivariant(orders):
    _, aggregated = aggregated_pair(orders, 3, "hidden")
    edge_index = radius_like_graph(4)
    num_edges = edge_index.shape[1]
    g = torch.Generator().manual_seed(0)
    basis = torch.randn(num_edges, 20, dtype=torch.float64, generator=g)  # invariant lengths
    irreps_in, irreps_sh = aggregated.irreps_in, aggregated.irreps_sh
    # x of 4 atoms and the SH of 12 edges, rotated together as one row of features
    joint = torch.randn(1, 4 * irreps_in.dim + num_edges * irreps_sh.dim, dtype=torch.float64,
                        generator=g)

    def summed(row):
        x = row[0, :4 * irreps_in.dim].view(4, -1)
        sh = row[0, 4 * irreps_in.dim:].view(num_edges, -1)
        return aggregated.aggregate(x, edge_index, sh, basis).reshape(1, -1)

    assert_equivariant(summed, 4 * irreps_in + num_edges * irreps_sh,
                       4 * aggregated.irreps_out, joint)


def test_cost_model_is_deterministic_and_picks_by_degree():
    pairs = pair_sizes(*message_block_irreps([0, 1, 2], 32, "hidden"))
    degree = break_even_degree(pairs, 32)
    assert 2.5 < degree < 17  # per-edge on bond graphs (~2 edges/atom), aggregated at 6 Å (~17)
    assert not prefers_aggregation(pairs, 32, num_edges=2 * 500, num_atoms=500)
    assert prefers_aggregation(pairs, 32, num_edges=17 * 500, num_atoms=500)
    assert [prefers_aggregation(pairs, 32, 17 * 500, 500) for _ in range(3)] == [True] * 3
    # high orders at h=16: the per-atom last layer outweighs the saving on QM9-size graphs
    wide = pair_sizes(*message_block_irreps([0, 3, 4, 5, 6], 16, "hidden"))
    assert not prefers_aggregation(wide, 16, num_edges=17 * 500, num_atoms=500)
    # the canonical hidden block: ~3.7x fewer multiply-adds at 17 edges/atom, less memory
    fused, aggregated = per_edge_cost(pairs, 32), aggregated_cost(pairs, 32)
    assert 3.5 < fused.macs(17, 1) / aggregated.macs(17, 1) < 4.0
    assert aggregated.floats(17, 1) < 0.5 * fused.floats(17, 1)


def test_model_chooses_per_block_and_always_never_force_it(qm9_molecules, make_batch):
    """auto: per-edge on bonds, aggregated on a dense graph; forced modes win over the model."""
    batch = make_batch(qm9_molecules[:3])
    model = build_model(ModelConfig(orders=[0, 1, 2], hidden=32), dtype=torch.float64)
    num_nodes, num_edges = batch.z.shape[0], batch.edge_index.shape[1]
    assert all(isinstance(b.message, AggregatedEdgeMessage) for b in model.blocks)
    assert not any(b.message.aggregates(num_edges, num_nodes) for b in model.blocks)
    assert [b.message.aggregates(17 * num_nodes, num_nodes) for b in model.blocks] == [True] * 5
    forced = build_model(ModelConfig(orders=[0, 1, 2], hidden=4, aggregate="always"))
    assert all(b.message.aggregates(num_edges, num_nodes) for b in forced.blocks)
    never = build_model(ModelConfig(orders=[0, 1, 2], hidden=4, aggregate="never"))
    assert all(type(b.message) is FusedEdgeMessage for b in never.blocks)


@pytest.mark.parametrize("graph", ["bonds", "radius"])
def test_whole_model_matches_e3nn_layout(graph, qm9_molecules, make_radius_batch, make_batch):
    """Energies, forces and every parameter gradient of an aggregating model equal e3nn's."""
    batch = (make_batch if graph == "bonds" else make_radius_batch)(qm9_molecules[:3])
    torch.manual_seed(0)
    reference = build_model(ModelConfig(orders=[0, 1, 2], hidden=4, tensor_product="e3nn",
                                        sh_backend="e3nn"), dtype=torch.float64)
    aggregated = build_model(ModelConfig(orders=[0, 1, 2], hidden=4, aggregate="always",
                                         sh_backend="e3nn"), dtype=torch.float64)
    aggregated.load_state_dict(convert_state_dict(reference, to="aggregate"))
    assert_fused_model_agrees(reference, aggregated, batch, ATOL)


def test_checkpoint_trained_aggregated_loads_into_per_edge_and_e3nn(qm9_molecules,
                                                                     make_radius_batch):
    """A few AdamW steps with aggregation; the state dict gives the same energies elsewhere."""
    batch = make_radius_batch(qm9_molecules[:4])
    torch.manual_seed(0)
    config = {"orders": [0, 1, 2], "hidden": 4, "sh_backend": "e3nn"}
    trained = build_model(ModelConfig(**config, aggregate="always"), dtype=torch.float64)
    optimizer = torch.optim.AdamW(trained.parameters(), lr=1e-2)
    for _ in range(3):
        optimizer.zero_grad()
        trained(batch, normalized=True).square().mean().backward()
        optimizer.step()
    energies = trained(batch).detach()
    per_edge = build_model(ModelConfig(**config, aggregate="never"), dtype=torch.float64)
    per_edge.load_state_dict(trained.state_dict())  # same layout: loads unchanged
    e3nn = build_model(ModelConfig(**config, tensor_product="e3nn"), dtype=torch.float64)
    e3nn.load_state_dict(convert_state_dict(trained, to="e3nn"))
    for other in (per_edge, e3nn):
        torch.testing.assert_close(other(batch), energies, atol=ATOL, rtol=0)
    back = build_model(ModelConfig(**config, aggregate="always"), dtype=torch.float64)
    back.load_state_dict(convert_state_dict(e3nn, to="aggregate"))
    torch.testing.assert_close(back(batch), energies, atol=ATOL, rtol=0)


@pytest.mark.gpu
@pytest.mark.parametrize("graph", ["bonds", "radius"])
def test_aggregating_model_on_cuda_matches_e3nn_layout(graph, qm9_molecules, make_radius_batch,
                                                       make_batch):
    """The same agreement on a CUDA device (bmm into preallocated sums, the layout on device)."""
    batch = (make_batch if graph == "bonds" else make_radius_batch)(qm9_molecules[:3])
    torch.manual_seed(0)
    reference = build_model(ModelConfig(orders=[0, 1, 2], hidden=8, tensor_product="e3nn",
                                        sh_backend="e3nn"), dtype=torch.float64).cuda()
    aggregated = build_model(ModelConfig(orders=[0, 1, 2], hidden=8, aggregate="always"),
                             dtype=torch.float64).cuda()
    aggregated.load_state_dict(convert_state_dict(reference, to="aggregate"))
    assert_fused_model_agrees(reference, aggregated, batch.to("cuda"), ATOL)
