"""The channel-strided feature layout of MACE's interaction messages and Allegro's tensor track,
converted to e3nn's flat layout and back.

Strided: ``x [rows, mul, sum_i (2 l_i + 1)]`` over irreps ``1x ir_1 + 1x ir_2 + ...``: every
channel holds one vector of each irrep. e3nn's flat layout of the same numbers is
``[rows, mul * sum_i (2 l_i + 1)]`` with irreps ``mul x ir_1 + mul x ir_2 + ...``: all channels
of ir_1 first, channel-major, m = -l..l inside a channel. A plain reshape of the strided tensor
has the right column count but assigns columns to the wrong l.
"""

from __future__ import annotations

import torch
from e3nn import o3

from irrepscope.errors import ConfigError


def flat_irreps(strided: o3.Irreps | str, mul: int) -> o3.Irreps:
    """e3nn irreps of strided features with ``mul`` channels: 1x0e+1x1o, 8 -> 8x0e+8x1o."""
    return o3.Irreps([(mul, ir) for _, ir in o3.Irreps(strided)])


def strided_to_flat(x: torch.Tensor, strided: o3.Irreps | str) -> torch.Tensor:
    """[rows, mul, strided.dim] -> [rows, mul * strided.dim] in e3nn's layout (see above)."""
    strided = o3.Irreps(strided)
    if x.ndim != 3 or x.shape[-1] != strided.dim:
        raise ConfigError(f"strided features of shape {tuple(x.shape)} do not match irreps "
                          f"{strided} ({strided.dim} numbers per channel)")
    rows, mul = x.shape[0], x.shape[1]
    return torch.cat([x[:, :, sl].reshape(rows, mul * ir.dim)
                      for (_, ir), sl in zip(strided, strided.slices(), strict=True)], dim=-1)


def flat_to_strided(x: torch.Tensor, strided: o3.Irreps | str, mul: int) -> torch.Tensor:
    """The inverse of ``strided_to_flat``: [rows, mul * strided.dim] -> [rows, mul, strided.dim]."""
    strided = o3.Irreps(strided)
    rows, parts, start = x.shape[0], [], 0
    for _, ir in strided:
        parts.append(x[:, start:start + mul * ir.dim].reshape(rows, mul, ir.dim))
        start += mul * ir.dim
    return torch.cat(parts, dim=-1)
