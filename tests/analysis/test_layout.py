"""The strided [rows, channels, sum(2l+1)] layout of MACE messages and Allegro tensor features
converted to e3nn's flat layout: exact inverse, and the columns of each l rotate with that l's
Wigner matrix (a plain reshape does not)."""

from __future__ import annotations

import torch
from e3nn import o3

from irrepscope.analysis.adapters.layout import flat_irreps, flat_to_strided, strided_to_flat

STRIDED = o3.Irreps("1x0e+1x1o+1x2e")


def _rotate_strided(x: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """Each channel's vector of each irrep rotated by its Wigner matrix."""
    return torch.einsum("ij,rcj->rci", STRIDED.D_from_matrix(rotation), x)


def test_round_trip_and_irreps() -> None:
    x = torch.randn(5, 4, STRIDED.dim, dtype=torch.float64)
    flat = strided_to_flat(x, STRIDED)
    assert flat_irreps(STRIDED, 4) == o3.Irreps("4x0e+4x1o+4x2e")
    assert flat.shape == (5, 36)
    torch.testing.assert_close(flat_to_strided(flat, STRIDED, 4), x)


def test_flat_layout_rotates_like_its_irreps_and_a_reshape_does_not() -> None:
    torch.manual_seed(0)
    x = torch.randn(7, 4, STRIDED.dim, dtype=torch.float64)
    rotation = o3.rand_matrix(dtype=torch.float64)
    turned = _rotate_strided(x, rotation)
    irreps = flat_irreps(STRIDED, 4)
    expected = strided_to_flat(x, STRIDED) @ irreps.D_from_matrix(rotation).T
    torch.testing.assert_close(strided_to_flat(turned, STRIDED), expected)
    wrong = x.reshape(7, -1) @ irreps.D_from_matrix(rotation).T
    assert (turned.reshape(7, -1) - wrong).abs().max() > 0.1
