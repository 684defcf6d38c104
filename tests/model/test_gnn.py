"""EquivariantGNN: symmetry of energies and forces on real QM9 molecules, batching, edge cases."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data

from irrepscope.errors import ConfigError, DataError
from irrepscope.model import ModelConfig, ModelOutput, build_model
from irrepscope.model.irreps import zero_orders
from irrepscope.testing import (
    REFERENCE_MODELS,
    assert_energy_invariant,
    assert_forces_equivariant,
    forces,
    random_rotation,
    rotate_irreps,
    transform_molecules,
)

BACKENDS = ["torch", "e3nn", pytest.param("triton", marks=pytest.mark.gpu)]
ORDER_SETS = [[0, 1, 2], [0, 3, 4, 5, 6], [0, 1, 2, 10]]


def small_model(orders=(0, 1, 2), hidden=4, backend="torch", seed=0, **kwargs):
    torch.manual_seed(seed)
    config = ModelConfig(orders=list(orders), hidden=hidden, sh_backend=backend, **kwargs)
    return build_model(config, dtype=torch.float64)


def normalized(model):
    return lambda batch: model(batch, normalized=True)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("orders", ORDER_SETS, ids=str)
def test_energy_invariant_and_forces_equivariant(qm9_molecules, make_batch, orders, backend):
    device = "cuda" if backend == "triton" else "cpu"
    model = small_model(orders, backend=backend).to(device)
    batch = make_batch(qm9_molecules).to(device)
    energy = model(batch, normalized=True)
    assert energy.shape == (len(qm9_molecules),) and energy.dtype == torch.float64
    assert energy.abs().min() > 1e-6  # invariance of a vanishing output would prove nothing
    assert_energy_invariant(normalized(model), batch, rtol=1e-9)
    assert_forces_equivariant(normalized(model), batch, rtol=1e-9)


def test_forces_are_nonzero_and_translation_free(qm9_molecules, make_batch):
    model = small_model()
    batch = make_batch(qm9_molecules)
    f = forces(model, batch)
    assert f.abs().max() > 1e-6
    per_molecule = torch.zeros(batch.num_graphs, 3, dtype=f.dtype).index_add(0, batch.batch, f)
    torch.testing.assert_close(per_molecule, torch.zeros_like(per_molecule), atol=1e-10, rtol=0)


def test_batched_equals_unbatched(qm9_molecules, make_batch):
    model = small_model([0, 1, 2, 3])
    batched = model(make_batch(qm9_molecules))
    single = torch.stack([model(m)[0] for m in qm9_molecules])
    torch.testing.assert_close(batched, single, atol=1e-10, rtol=1e-12)
    assert model(qm9_molecules[0]).shape == (1,)


def _single_atom(z=6):
    return Data(z=torch.tensor([z]), pos=torch.randn(1, 3, dtype=torch.float64),
                edge_index=torch.zeros(2, 0, dtype=torch.long), idx=-1)


def test_single_atom_molecule_gets_the_constant_offset(qm9_molecules, make_batch):
    """Without neighbours no message reaches an atom: its energy is the head's offset, F = 0."""
    model = small_model()
    offset = model.head.bias.detach() * model.config.label_std + model.config.label_mean
    for z in (1, 6, 9):
        energy = model(_single_atom(z))
        assert torch.isfinite(energy).all()
        torch.testing.assert_close(energy, offset, atol=1e-12, rtol=0)
    lone = _single_atom()
    assert forces(model, lone).abs().max() == 0
    mixed = model(make_batch([qm9_molecules[1], lone, qm9_molecules[2]]))
    torch.testing.assert_close(mixed[[0, 2]], model(make_batch(qm9_molecules[1:3])),
                               atol=1e-10, rtol=0)


def test_far_apart_fragments_are_additive(qm9_molecules, graph_tools):
    radius_edges = graph_tools.radius_edges
    """Fragments beyond the cutoff do not interact: E(A+B) = E(A) + E(B) - E(no atoms' sum)."""
    model = small_model([0, 1, 2])
    a, b = qm9_molecules[2], qm9_molecules[3]
    shifted = b.pos + torch.tensor([30.0, 0.0, 0.0], dtype=torch.float64)
    pos = torch.cat([a.pos, shifted])
    graph = Data(z=torch.cat([a.z, b.z]), pos=pos, edge_index=radius_edges(pos, 6.0))
    apart = [Data(z=m.z, pos=m.pos, edge_index=radius_edges(m.pos, 6.0)) for m in (a, b)]
    offset = model.head.bias.detach() * model.config.label_std + model.config.label_mean
    combined = model(graph)
    torch.testing.assert_close(combined, model(apart[0]) + model(apart[1]) - offset,
                               atol=1e-9, rtol=0)
    # an explicit edge longer than the cutoff carries an exactly zero message
    long_edges = torch.cat([graph.edge_index, torch.tensor([[0], [a.z.numel()]])], dim=1)
    long_graph = Data(z=graph.z, pos=pos, edge_index=long_edges)
    torch.testing.assert_close(model(long_graph), combined, atol=0, rtol=0)


def test_feature_hook_sees_every_block_and_can_ablate(qm9_molecules, make_batch):
    model = small_model()
    batch = make_batch(qm9_molecules)
    plain = model(batch)
    seen = []

    def record(index, x, irreps):
        seen.append((index, x.shape, irreps))

    torch.testing.assert_close(model(batch, feature_hook=record), plain, atol=0, rtol=0)
    assert [s[0] for s in seen] == list(range(5))
    assert all(shape == (batch.num_nodes, irreps.dim) for _, shape, irreps in seen)

    def ablate_l2(index, x, irreps):
        return zero_orders(x, irreps, [2])

    ablated = model(batch, feature_hook=ablate_l2)
    assert (ablated - plain).abs().max() > 1e-8
    assert_energy_invariant(lambda b: model(b, feature_hook=ablate_l2), batch)

    offset = model.head.bias.detach() * model.config.label_std + model.config.label_mean
    zero_last = model(batch, feature_hook=lambda i, x, ir: torch.zeros_like(x) if i == 4 else x)
    torch.testing.assert_close(zero_last, offset.expand(batch.num_graphs), atol=1e-12, rtol=0)


def test_feature_hook_retain_grad_gives_input_gradients(qm9_molecules, make_batch):
    model = small_model()
    kept = {}

    def keep(index, x, irreps):
        x.retain_grad()
        kept[index] = x

    model(make_batch(qm9_molecules), feature_hook=keep).sum().backward()
    assert sorted(kept) == list(range(5))
    assert all(kept[i].grad is not None and kept[i].grad.abs().max() > 0 for i in kept)


def test_embed_returns_energies_features_and_pooled_embeddings(qm9_molecules, make_batch):
    model = small_model([0, 2, 3])
    batch = make_batch(qm9_molecules)
    out = model.embed(batch)
    assert isinstance(out, ModelOutput)
    torch.testing.assert_close(out.energy, model(batch), atol=0, rtol=0)
    assert len(out.node_features) == len(out.graph_embeddings) == len(out.irreps) == 5
    assert out.irreps == model.block_irreps
    assert str(out.irreps[0]) == "4x0e+4x2e+4x3o"
    for nodes, graphs, irreps in zip(out.node_features, out.graph_embeddings, out.irreps,
                                     strict=True):
        assert nodes.shape == (batch.num_nodes, irreps.dim)
        assert graphs.shape == (batch.num_graphs, irreps.dim)
        torch.testing.assert_close(graphs[1], nodes[batch.batch == 1].sum(0))
    # pooled embeddings rotate as their irreps say
    rotation = random_rotation()
    rotated = model.embed(transform_molecules(batch, rotation=rotation))
    for index in (0, 4):
        expected = rotate_irreps(out.irreps[index], out.graph_embeddings[index], rotation)
        torch.testing.assert_close(rotated.graph_embeddings[index], expected, atol=1e-9, rtol=0)
        assert (rotated.graph_embeddings[index] - out.graph_embeddings[index]).abs().max() > 1e-6


def test_normalized_and_ev_outputs_agree(qm9_molecules, make_batch):
    model = small_model()
    batch = make_batch(qm9_molecules)
    norm = model(batch, normalized=True)
    torch.testing.assert_close(model(batch), norm * 10.3238 - 76.116, atol=1e-12, rtol=0)


def test_same_seed_same_weights_and_float32_default():
    a, b = small_model(seed=3), small_model(seed=3)
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(pa, pb), name
    torch.manual_seed(0)
    model = build_model(ModelConfig(orders=[0, 1], hidden=2))
    assert model.embedding.weight.dtype == torch.float32
    assert model.embedding.weight[0].abs().max() == 0  # padding row


def test_float32_model_accepts_float32_and_float64_positions(qm9_molecules):
    torch.manual_seed(0)
    model = build_model(ModelConfig(orders=[0, 1, 2], hidden=4, sh_backend="torch"))
    data = qm9_molecules[2]
    e64 = model(data)
    e32 = model(Data(z=data.z, pos=data.pos.float(), edge_index=data.edge_index))
    assert e32.dtype == torch.float32
    torch.testing.assert_close(e32, e64, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("z", [0, 100, 118])
def test_bad_atomic_numbers_raise_data_error(z):
    model = small_model()
    with pytest.raises(DataError, match="atomic numbers"):
        model(_single_atom(z))


def test_gate_and_irrep_dropout_options(qm9_molecules, make_batch):
    batch = make_batch(qm9_molecules)
    gated = small_model([0, 1, 2], gate=True)
    assert_energy_invariant(normalized(gated), batch)
    dropped = small_model([0, 1, 2], irrep_dropout=0.5)
    dropped.eval()
    plain = small_model([0, 1, 2])
    torch.testing.assert_close(dropped(batch), plain(batch), atol=0, rtol=0)
    dropped.train()

    def seeded(b):
        torch.manual_seed(7)
        return dropped(b, normalized=True)

    rotation = random_rotation()
    torch.testing.assert_close(seeded(transform_molecules(batch, rotation=rotation)),
                               seeded(batch), atol=1e-9, rtol=0)
    assert (seeded(batch) - plain(batch, normalized=True)).abs().max() > 1e-8


def test_build_model_accepts_run_config_and_mapping():
    class Run:
        model = ModelConfig(orders=[0, 1], hidden=2)

    assert build_model(Run()).config.orders == [0, 1]
    assert build_model({"orders": [1, 0], "hidden": 2}).config.orders == [0, 1]
    import irrepscope

    assert irrepscope.build_model(Run()).block_irreps[0].dim == 2 + 6
    with pytest.raises(ConfigError):
        build_model(42)
    with pytest.raises(ConfigError, match="unknown"):
        build_model({"orders": [0], "hiden": 2})


@pytest.mark.parametrize(("orders", "hidden", "expected"), REFERENCE_MODELS,
                         ids=[str(o) for o, _, _ in REFERENCE_MODELS])
def test_parameter_counts_match_reference(orders, hidden, expected):
    model = build_model(ModelConfig(orders=orders, hidden=hidden))
    assert sum(p.numel() for p in model.parameters()) == expected
    assert len(model.blocks) == 5
