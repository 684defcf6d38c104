"""Accuracy against the independent 50-digit oracle, every l, random and special directions."""

from __future__ import annotations

import pytest
import torch

from irrepscope.sph import spherical_harmonics
from irrepscope.sph.oracle import oracle


def _directions(n: int = 40) -> torch.Tensor:
    g = torch.Generator().manual_seed(2)
    special = torch.tensor([[0, 1, 0], [0, -1, 0], [1, 0, 0], [-1, 0, 0], [0, 0, 1], [0, 0, -1],
                            [1, 1, 1], [1e-7, 1, 0], [0, 1, 1e-7], [3e-9, 1e-9, -2e-9],
                            [1e6, -2e6, 3e6]], dtype=torch.float64)
    return torch.cat([special, torch.randn(n, 3, generator=g, dtype=torch.float64)])


@pytest.mark.parametrize("l", range(11))
def test_float64_and_float32_match_the_oracle(l: int) -> None:
    v = _directions()
    ref = oracle(l, v)
    err64 = (spherical_harmonics([l], v, True, "component") - ref).abs().max().item()
    assert err64 <= 1e-12, err64
    v32 = v.float()  # the oracle at the float32-rounded input: only evaluation error is measured
    err32 = (spherical_harmonics([l], v32, True, "component").double()
             - oracle(l, v32.double())).abs().max().item()
    assert err32 <= 5e-6, err32


@pytest.mark.parametrize("dtype,atol", [(torch.float16, 2e-2), (torch.bfloat16, 1.5e-1)])
def test_half_precision_rounds_once(dtype: torch.dtype, atol: float) -> None:
    v = _directions(10)
    v = torch.cat([v[:9], v[11:]]).to(dtype)  # half cannot hold the huge and tiny norms
    out = spherical_harmonics([0, 3, 10], v, True, "component")
    assert out.dtype == dtype
    ref = torch.cat([oracle(l, v.double()) for l in (0, 3, 10)], dim=1)
    assert (out.double() - ref).abs().max().item() <= atol * 4.6  # |Y_10| <= sqrt(21)
