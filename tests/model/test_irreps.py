"""Irreps bookkeeping: hidden irreps strings, splitting features per l, invariants."""

from __future__ import annotations

import torch

from irrepscope.model.irreps import (
    columns_by_l,
    features_by_l,
    hidden_irreps,
    invariants_by_l,
    sh_irreps,
    zero_orders,
)
from irrepscope.testing import random_rotation, rotate_irreps

IRREPS = "4x0e+4x1o+4x2e"


def test_hidden_and_sh_irreps_have_parity_minus_one_to_the_l():
    assert str(hidden_irreps([0, 1, 2], 32)) == "32x0e+32x1o+32x2e"
    assert str(hidden_irreps([6, 0, 3], 16)) == "16x0e+16x3o+16x6e"
    assert str(sh_irreps([0, 1, 2, 10])) == "1x0e+1x1o+1x2e+1x10e"
    assert hidden_irreps(range(7), 16).dim == 16 * 49


def test_split_gives_mul_times_2l_plus_1_columns():
    x = torch.randn(7, 3, 4 + 12 + 20, dtype=torch.float64)
    parts = features_by_l(x, IRREPS)
    assert {l: p.shape[-2:] for l, p in parts.items()} == {0: (4, 1), 1: (4, 3), 2: (4, 5)}
    assert {l: p[0, 0].numel() for l, p in parts.items()} == {0: 4, 1: 12, 2: 20}
    assert all(p.shape[:2] == (7, 3) for p in parts.values())
    # channel-major layout: channel 1 of l=1 is columns 7..9
    torch.testing.assert_close(parts[1][..., 1, :], x[..., 7:10])
    cols = columns_by_l(IRREPS)
    assert [c.numel() for c in cols.values()] == [4, 12, 20]
    torch.testing.assert_close(torch.cat([x[..., c] for c in cols.values()], -1), x)


def test_split_joins_repeated_orders():
    x = torch.randn(2, 2 + 3 + 1 + 6)
    parts = features_by_l(x, "2x0e+1x1o+1x0o+2x1e")
    assert parts[0].shape == (2, 3, 1) and parts[1].shape == (2, 3, 3)


def test_invariants_unchanged_by_rotation_while_raw_features_change():
    x = torch.randn(10, 36, dtype=torch.float64)
    rotation = random_rotation()
    y = rotate_irreps(IRREPS, x, rotation, parity=True)
    raw_x, raw_y = features_by_l(x, IRREPS), features_by_l(y, IRREPS)
    for l in (1, 2):
        assert (raw_x[l] - raw_y[l]).abs().max() > 1e-3
    inv_x, inv_y = invariants_by_l(x, IRREPS), invariants_by_l(y, IRREPS)
    for l in (0, 1, 2):
        assert inv_x[l].shape == (10, 4)
        torch.testing.assert_close(inv_x[l], inv_y[l], atol=1e-12, rtol=0)
    torch.testing.assert_close(inv_x[0], x[:, :4])
    assert (invariants_by_l(x, IRREPS, signed_scalars=False)[0] >= 0).all()


def test_zero_orders_ablates_only_the_given_orders():
    x = torch.randn(5, 36)
    z = zero_orders(x, IRREPS, [1])
    assert z[:, 4:16].abs().max() == 0
    torch.testing.assert_close(z[:, :4], x[:, :4])
    torch.testing.assert_close(z[:, 16:], x[:, 16:])
    torch.testing.assert_close(zero_orders(x, IRREPS, [7]), x)
