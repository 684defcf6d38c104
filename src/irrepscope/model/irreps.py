"""Irreps bookkeeping: hidden/SH irreps of an order set, splitting features per l, invariants.

Feature layout is e3nn's: for each irrep entry ``mul x l`` the block holds ``mul`` consecutive
(2l+1)-vectors (channel-major, m = -l..l inside a channel).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from e3nn import o3


def parity(l: int) -> str:
    """The parity letter of a spherical harmonic of order l: 'e' for even l, 'o' for odd."""
    return "e" if l % 2 == 0 else "o"


def hidden_irreps(orders: Iterable[int], hidden: int) -> o3.Irreps:
    """h copies of every order with parity (-1)^l, sorted: [0,1,2], 32 -> 32x0e+32x1o+32x2e."""
    return o3.Irreps("+".join(f"{hidden}x{l}{parity(l)}" for l in sorted(orders)))


def sh_irreps(orders: Iterable[int]) -> o3.Irreps:
    """Irreps of the spherical harmonics of the orders, sorted: [0,2] -> 1x0e+1x2e."""
    return hidden_irreps(orders, 1)


def columns_by_l(irreps: o3.Irreps | str) -> dict[int, torch.Tensor]:
    """Column indices (LongTensor) of every order l in a [..., irreps.dim] feature tensor."""
    irreps = o3.Irreps(irreps)
    cols: dict[int, list[torch.Tensor]] = {}
    for (_, ir), sl in zip(irreps, irreps.slices(), strict=True):
        cols.setdefault(ir.l, []).append(torch.arange(sl.start, sl.stop))
    return {l: torch.cat(parts) for l, parts in sorted(cols.items())}


def features_by_l(x: torch.Tensor, irreps: o3.Irreps | str) -> dict[int, torch.Tensor]:
    """Split x [..., irreps.dim] into {l: Tensor [..., mul_l, 2l+1]} (entries of equal l joined)."""
    irreps = o3.Irreps(irreps)
    if x.shape[-1] != irreps.dim:
        raise ValueError(
            f"features have {x.shape[-1]} columns but irreps {irreps} need {irreps.dim}"
        )
    parts: dict[int, list[torch.Tensor]] = {}
    for (mul, ir), sl in zip(irreps, irreps.slices(), strict=True):
        block = x[..., sl].reshape(*x.shape[:-1], mul, ir.dim)
        parts.setdefault(ir.l, []).append(block)
    return {l: torch.cat(blocks, dim=-2) for l, blocks in sorted(parts.items())}


def invariants_by_l(
    x: torch.Tensor, irreps: o3.Irreps | str, signed_scalars: bool = True
) -> dict[int, torch.Tensor]:
    """{l: Tensor [..., mul_l]}: the norm of each channel's (2l+1)-vector (rotation invariant).

    With ``signed_scalars`` the l=0 entry is the scalar itself (its sign is invariant for 0e too).
    """
    out = {}
    for l, block in features_by_l(x, irreps).items():
        out[l] = block[..., 0] if (l == 0 and signed_scalars) else block.norm(dim=-1)
    return out


def zero_orders(x: torch.Tensor, irreps: o3.Irreps | str, orders: Iterable[int]) -> torch.Tensor:
    """Copy of x [..., irreps.dim] with the columns of the given orders set to zero (ablation)."""
    cols = columns_by_l(irreps)
    mask = torch.ones(x.shape[-1], dtype=x.dtype, device=x.device)
    for l in orders:
        if l in cols:
            mask[cols[l].to(x.device)] = 0
    return x * mask
