"""PyTorch backend: the generated closed forms inside one autograd.Function.

Forward and backward work on [N] column tensors (one contiguous column per x, y, z and per
cotangent component) and write the output with one ``torch.stack``. The backward is the generated
closed-form VJP, written in differentiable torch ops, so that double backward (forces trained
through a model) is autograd of that closed form. Half precision is computed in float32 and
rounded once. Normalisation is e3nn's ``v / max(|v|, 1e-12)``; its gradient is the tangential
projection over |v|, and exactly zero for |v| <= 1e-12: zero vectors give finite, zero gradients,
and zero second derivatives too (|v| is taken as sqrt(max(|v|^2, 1e-24)), whose derivative is
zero there, so autograd of the closed-form VJP never meets sqrt's infinite slope at 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from irrepscope.sph import _generated_torch as _gen
from irrepscope.sph.symbolic import scale

EPS = 1e-12  # torch.nn.functional.normalize's eps, as e3nn uses it
# Eager calls on a CPU work on blocks of this many vectors: every intermediate column of a block
# stays in the CPU's cache (unblocked, large inputs spill out of it and run slower per vector).
# Not on a GPU: there every block costs hundreds of kernel launches (blocked, the H200 run in
# docs/benchmarks.md took 10x e3nn's time at 2^20 vectors).
CHUNK = 1 << 15


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float16/bfloat16 are evaluated in float32; float32/float64 in themselves."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _unit(vectors: torch.Tensor, normalize: bool) -> tuple[torch.Tensor, ...]:
    """Columns x, y, z [N] (normalised when asked), 1/max(|v|, eps) and |v| > eps (or None)."""
    x, y, z = vectors.t().contiguous().unbind(0)
    if not normalize:
        return x, y, z, None, None
    r2 = x * x + y * y + z * z
    inv = 1.0 / torch.sqrt(torch.clamp_min(r2, EPS * EPS))
    return x * inv, y * inv, z * inv, inv, r2 > EPS * EPS


def forward_flat(vectors: torch.Tensor, orders: Sequence[int], normalize: bool,
                 normalization: str) -> torch.Tensor:
    """Y [N, sum(2l+1)] of vectors [N, 3] in the compute dtype (no autograd of its own)."""
    x, y, z, _, _ = _unit(vectors, normalize)
    shared = _gen.common(x, y, z, max(orders))
    cols: list[torch.Tensor] = []
    for l in orders:
        cols += _gen.FORWARD[l](x, y, z, scale(l, normalization), shared)
    return torch.stack(cols, dim=1)


def vjp_flat(grad: torch.Tensor, vectors: torch.Tensor, orders: Sequence[int], normalize: bool,
             normalization: str) -> torch.Tensor:
    """d<grad, Y(vectors)>/d vectors [N, 3], in differentiable torch ops (for double backward)."""
    x, y, z, inv, inside = _unit(vectors, normalize)
    g = grad.t().contiguous().unbind(0)
    shared = _gen.common(x, y, z, max(orders))
    gx = gy = gz = None
    offset = 0
    for l in orders:
        width = 2 * l + 1
        if l:
            ax, ay, az = _gen.VJP[l](x, y, z, scale(l, normalization), shared,
                                     g[offset:offset + width])
            gx, gy, gz = (ax, ay, az) if gx is None else (gx + ax, gy + ay, gz + az)
        offset += width
    if gx is None:  # only order 0: a constant
        return torch.zeros_like(vectors)
    if inv is not None:
        radial = gx * x + gy * y + gz * z
        # below |v| = eps the gradient is defined as zero (e3nn's would be g / eps)
        gx = torch.where(inside, (gx - radial * x) * inv, 0.0)
        gy = torch.where(inside, (gy - radial * y) * inv, 0.0)
        gz = torch.where(inside, (gz - radial * z) * inv, 0.0)
    return torch.stack([gx, gy, gz], dim=1)


def _chunked(fn, n: int, *tensors: torch.Tensor) -> torch.Tensor:
    """fn over row blocks of ``tensors`` [n, ...], concatenated (one call when small, traced or
    not on a CPU)."""
    if n <= CHUNK or torch.compiler.is_compiling() or tensors[0].device.type != "cpu":
        return fn(*tensors)
    return torch.cat([fn(*(t[i:i + CHUNK] for t in tensors)) for i in range(0, n, CHUNK)])


class SphericalHarmonicsFunction(torch.autograd.Function):
    """vectors [N, 3] (compute dtype) -> Y [N, D]; closed-form backward, double backward."""

    @staticmethod
    def forward(ctx, vectors: torch.Tensor, orders: tuple[int, ...], normalize: bool,
                normalization: str) -> torch.Tensor:
        ctx.save_for_backward(vectors)
        ctx.args = (orders, normalize, normalization)
        return _chunked(lambda v: forward_flat(v, orders, normalize, normalization),
                        vectors.shape[0], vectors)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (vectors,) = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None, None
        return _chunked(lambda g, v: vjp_flat(g, v, *ctx.args), vectors.shape[0], grad,
                        vectors), None, None, None


def spherical_harmonics_torch(orders: Sequence[int], vectors: torch.Tensor, normalize: bool,
                              normalization: str) -> torch.Tensor:
    """Y [..., sum(2l+1)] of vectors [..., 3] (validated by the caller), in vectors' dtype."""
    dim = sum(2 * l + 1 for l in orders)
    batch = vectors.shape[:-1]
    flat = vectors.reshape(-1, 3)
    work = compute_dtype(vectors.dtype)
    if flat.shape[0] == 0:
        return (flat.sum(-1, keepdim=True) * 0).expand(0, dim).reshape(*batch, dim)
    out = SphericalHarmonicsFunction.apply(flat.to(work), tuple(orders), normalize, normalization)
    return out.to(vectors.dtype).reshape(*batch, dim)
