"""One convolution block: edge features, aggregation, residual, gate, irrep dropout."""

from __future__ import annotations

import pytest
import torch
from e3nn import o3

from irrepscope.model.dtype import default_dtype
from irrepscope.model.interaction import (
    InteractionBlock,
    IrrepDropout,
    edge_features,
    edge_vectors,
    gated_irreps,
)
from irrepscope.model.irreps import hidden_irreps, sh_irreps
from irrepscope.testing import random_rotation, rotate_irreps

ORDERS = [0, 1, 2]
HIDDEN, SH = hidden_irreps(ORDERS, 3), sh_irreps(ORDERS)


def _block(irreps_in=HIDDEN, **kwargs):
    with default_dtype(torch.float64):
        torch.manual_seed(0)
        return InteractionBlock(irreps_in, SH, HIDDEN, num_basis=8, radial_hidden=4,
                                degree_norm=6.0828, **kwargs)


def _graph(num_nodes=6):
    generator = torch.Generator().manual_seed(0)
    pos = 1.5 * torch.randn(num_nodes, 3, dtype=torch.float64, generator=generator)
    src, dst = torch.meshgrid(torch.arange(num_nodes), torch.arange(num_nodes), indexing="ij")
    keep = src != dst
    return pos, torch.stack([src[keep], dst[keep]])


@pytest.mark.parametrize("backend", ["torch", "e3nn"])
def test_edge_features_shapes_and_convention(backend):
    pos, edge_index = _graph()
    sh, radial = edge_features(pos, edge_index, ORDERS, 8, 6.0, backend)
    assert sh.shape == (edge_index.shape[1], 9) and radial.shape == (edge_index.shape[1], 8)
    torch.testing.assert_close(edge_vectors(pos, edge_index)[0],
                               pos[edge_index[0, 0]] - pos[edge_index[1, 0]])
    expected = o3.spherical_harmonics(ORDERS, edge_vectors(pos, edge_index), True, "integral")
    torch.testing.assert_close(sh, expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("options", [{}, {"residual": True}, {"gate": True},
                                     {"gate": True, "residual": True}], ids=str)
def test_block_is_equivariant(options):
    block = _block(**options)
    pos, edge_index = _graph()
    x = torch.randn(pos.shape[0], HIDDEN.dim, dtype=torch.float64)
    out = block(x, edge_index, *edge_features(pos, edge_index, ORDERS, 8, 6.0, "torch"))
    rotation = random_rotation()
    for parity in (False, True):
        pos_r = (pos @ rotation.T) * (-1 if parity else 1)
        x_r = rotate_irreps(HIDDEN, x, rotation, parity)
        out_r = block(x_r, edge_index, *edge_features(pos_r, edge_index, ORDERS, 8, 6.0, "torch"))
        torch.testing.assert_close(out_r, rotate_irreps(HIDDEN, out, rotation, parity),
                                   atol=1e-10, rtol=0)


def test_block_sums_messages_at_target_divided_by_degree_norm():
    block = _block(residual=True)
    pos, edge_index = _graph(4)
    x = torch.randn(4, HIDDEN.dim, dtype=torch.float64)
    sh, radial = edge_features(pos, edge_index, ORDERS, 8, 6.0, "torch")
    messages = block.message(x[edge_index[0]], sh, radial)
    expected = torch.stack([messages[edge_index[1] == i].sum(0) for i in range(4)]) / 6.0828 + x
    torch.testing.assert_close(block(x, edge_index, sh, radial), expected)


def test_gate_adds_gate_scalars_to_the_message():
    assert str(gated_irreps(HIDDEN)) == "3x0e+6x0e+3x1o+3x2e"
    assert str(gated_irreps(o3.Irreps("3x0e"))) == "3x0e"
    block = _block(gate=True)
    assert block.message.irreps_out == gated_irreps(HIDDEN) and block.irreps_out == HIDDEN


def test_residual_needs_equal_irreps():
    with pytest.raises(ValueError, match="residual"):
        _block(irreps_in="5x0e", residual=True)


def test_irrep_dropout_drops_whole_vectors_and_is_identity_in_eval():
    dropout = IrrepDropout(HIDDEN, 0.5)
    x = torch.randn(200, HIDDEN.dim, dtype=torch.float64) + 3.0
    dropout.eval()
    assert torch.equal(dropout(x), x)
    dropout.train()
    torch.manual_seed(0)
    y = dropout(x)
    ratio = y / x
    for (mul, ir), sl in zip(HIDDEN, HIDDEN.slices(), strict=True):
        block = ratio[:, sl].reshape(200, mul, ir.dim)
        assert (block == block[..., :1]).all()  # one decision per (2l+1)-vector
    assert set(ratio.unique().tolist()) == {0.0, 2.0}
    assert 0.4 < (ratio == 0).double().mean().item() < 0.6


def test_edge_features_use_irrepscope_sph_with_the_configured_backend(monkeypatch):
    import irrepscope.sph

    calls = []

    def recorder(ls, vectors, normalize=True, normalization="integral", backend="auto"):
        calls.append((list(ls), normalize, normalization, backend))
        return o3.spherical_harmonics(list(ls), vectors, normalize, normalization)

    monkeypatch.setattr(irrepscope.sph, "spherical_harmonics", recorder, raising=False)
    pos, edge_index = _graph(3)
    edge_features(pos, edge_index, [0, 3, 4], 8, 6.0, "e3nn")
    assert calls == [([0, 3, 4], True, "integral", "e3nn")]
