"""Bessel basis and radial MLP against e3nn's soft_one_hot_linspace and FullyConnectedNet."""

from __future__ import annotations

import math

import torch
from e3nn.math import soft_one_hot_linspace
from e3nn.nn import FullyConnectedNet

from irrepscope.model.radial import BesselBasis, RadialMLP, bessel_basis


def test_bessel_basis_matches_e3nn_scaled_by_sqrt_n():
    r = torch.linspace(0.05, 5.95, 200, dtype=torch.float64)
    expected = soft_one_hot_linspace(r, 0.0, 6.0, 20, basis="bessel", cutoff=True) * math.sqrt(20)
    torch.testing.assert_close(bessel_basis(r, 20, 6.0), expected, atol=1e-12, rtol=1e-12)
    assert BesselBasis(20, 6.0)(r).shape == (200, 20)


def test_bessel_basis_is_zero_beyond_cutoff_continuous_at_it_and_finite_at_zero():
    r = torch.tensor([0.0, 6.0 - 1e-9, 6.0, 7.5], dtype=torch.float64, requires_grad=True)
    out = bessel_basis(r, 20, 6.0)
    assert torch.isfinite(out).all()
    assert out[0].abs().max() == 0 and out[2:].abs().max() == 0
    assert out[1].abs().max() < 1e-6
    (grad,) = torch.autograd.grad(out.sum(), r)
    assert torch.isfinite(grad).all()


def test_radial_mlp_equals_e3nn_fully_connected_net():
    torch.manual_seed(0)
    ours = RadialMLP(20, 8, 30).double()
    theirs = FullyConnectedNet([20, 8, 30], torch.nn.functional.silu).double()
    with torch.no_grad():
        theirs[0].weight.copy_(ours.weight_in)
        theirs[1].weight.copy_(ours.weight_out)
    x = torch.randn(50, 20, dtype=torch.float64)
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-12, rtol=1e-12)
    assert [n for n, _ in ours.named_parameters()] == ["weight_in", "weight_out"]
    assert sum(p.numel() for p in ours.parameters()) == 20 * 8 + 8 * 30
    torch.testing.assert_close(ours.hidden_features(x) @ ours.weight_out / math.sqrt(8), ours(x))


def test_radial_mlp_has_unit_variance_at_init_and_no_bias():
    torch.manual_seed(1)
    mlp = RadialMLP(20, 64, 64)
    out = mlp(torch.randn(4000, 20))
    assert 0.8 < out.var().item() < 1.25
    assert mlp(torch.zeros(3, 20)).abs().max() == 0
