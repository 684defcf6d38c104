"""Radial part of a message: Bessel basis of the edge length and the MLP that maps it to weights.

``bessel_basis`` equals ``e3nn.math.soft_one_hot_linspace(r, 0, cutoff, n, "bessel", cutoff=True)
* sqrt(n)`` (the reference model's edge embedding) but is finite at r = 0. Each function
sqrt(2/c) sin(k pi r / c) / r vanishes at r = c, so the basis goes continuously to zero at the
cutoff, and it is exactly zero for r >= c.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import nn


def bessel_basis(lengths: torch.Tensor, num_basis: int, cutoff: float) -> torch.Tensor:
    """lengths [E] (Å) -> [E, num_basis]: sqrt(n) sqrt(2/c) sin(k pi r/c)/r for 0<r<c, else 0."""
    r = lengths.unsqueeze(-1)
    k = torch.arange(1, num_basis + 1, dtype=lengths.dtype, device=lengths.device) * math.pi
    inside = (r > 0) & (r < cutoff)
    safe_r = torch.where(inside, r, torch.ones_like(r))
    values = math.sqrt(2.0 / cutoff) * torch.sin(k * safe_r / cutoff) / safe_r
    return torch.where(inside, values, torch.zeros_like(values)) * math.sqrt(num_basis)


class BesselBasis(nn.Module):
    """Module form of ``bessel_basis`` (no parameters): lengths [E] -> [E, num_basis]."""

    def __init__(self, num_basis: int, cutoff: float) -> None:
        super().__init__()
        self.num_basis = num_basis
        self.cutoff = float(cutoff)

    def forward(self, lengths: torch.Tensor) -> torch.Tensor:
        return bessel_basis(lengths, self.num_basis, self.cutoff)

    def extra_repr(self) -> str:
        return f"num_basis={self.num_basis}, cutoff={self.cutoff}"


@lru_cache(maxsize=1)
def silu_second_moment_scale() -> float:
    """1/sqrt(E[silu(z)^2]) for z ~ N(0,1), as e3nn's ``normalize2mom`` computes it."""
    from e3nn.math import normalize2mom

    act = normalize2mom(torch.nn.functional.silu)
    return 1.0 if act._is_id else float(act.cst)


class RadialMLP(nn.Module):
    """[num_basis -> hidden -> num_out] MLP, SiLU, no biases; e3nn ``FullyConnectedNet`` semantics.

    Parameters (stable names, used by weight converters): ``weight_in`` [num_basis, hidden] and
    ``weight_out`` [hidden, num_out], both initialised N(0, 1); each layer divides by sqrt(fan_in)
    and the SiLU is rescaled to unit second moment, so outputs have unit variance at init.
    """

    def __init__(self, num_basis: int, hidden: int, num_out: int) -> None:
        super().__init__()
        self.num_basis, self.hidden, self.num_out = num_basis, hidden, num_out
        self.weight_in = nn.Parameter(torch.randn(num_basis, hidden))
        self.weight_out = nn.Parameter(torch.randn(hidden, num_out))
        self.act_scale = silu_second_moment_scale()

    def hidden_features(self, basis: torch.Tensor) -> torch.Tensor:
        """basis [E, num_basis] -> activated hidden layer [E, hidden] (before ``weight_out``)."""
        h = basis @ (self.weight_in / math.sqrt(self.num_basis))
        return torch.nn.functional.silu(h) * self.act_scale

    def forward(self, basis: torch.Tensor) -> torch.Tensor:
        """basis [E, num_basis] -> per-edge weights [E, num_out]."""
        return self.hidden_features(basis) @ (self.weight_out / math.sqrt(self.hidden))

    def extra_repr(self) -> str:
        return f"{self.num_basis} -> {self.hidden} -> {self.num_out}, act=silu, bias=False"
