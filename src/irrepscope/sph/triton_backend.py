"""Fused Triton spherical harmonics: one launch for the forward, one for the VJP, any order set.

``spherical_harmonics_triton(orders, vectors, normalize, normalization)`` maps vectors
``[..., 3]`` to ``[..., sum(2l+1)]`` (m=-l..l within each order, orders in the given sequence,
e3nn's conventions). The order set, ``normalize`` and the normalisation are compile-time
specialisations of the generated kernels; the number of vectors is not (no recompile for a new
N). Inputs may have any strides. float64 computes in float64; float16/bfloat16/float32 compute in
float32 and round once on store.

CUDA tensors run compiled kernels; CPU tensors (or ``TRITON_INTERPRET=1``) run the same kernels
in Triton's interpreter: the same arithmetic (except that it truncates float32 -> bfloat16 where
GPUs round to nearest), but slow: use it for tests, not for speed.

The forward and the VJP are ``torch.library`` custom ops (``irrepscope::sph_triton_forward``,
``irrepscope::sph_triton_backward``) with fake implementations and registered autograd, so that
``torch.compile(fullgraph=True)`` traces them as single nodes. Double backward (forces) is
autograd of the torch path's closed-form VJP (``torch_backend.vjp_flat``). Nothing is cached
here: every call passes its own order set, so concurrent calls and interleaved backward passes
are independent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import triton
from triton import knobs
from triton.runtime.interpreter import InterpretedFunction
from triton.runtime.jit import JITFunction

from irrepscope.sph import _generated_triton as _gen

BLOCK = 128  # vectors per program
NUM_WARPS = 4
# forward stores: each order's columns as one row tile (True) or column by column (False)
ROW_TILES = True
NORMALIZATIONS = {"component": 0, "integral": 1, "norm": 2}


class _Kernels(NamedTuple):
    forward: object
    backward: object


def _wrap(kind: type) -> _Kernels:
    return _Kernels(kind(_gen.sph_forward_kernel, do_not_specialize=["n"]),
                    kind(_gen.sph_backward_kernel, do_not_specialize=["n"]))


# Built once at import and never mutated; Triton keeps its own per-specialisation binaries.
_COMPILED = _wrap(JITFunction)
_INTERPRETED = _wrap(InterpretedFunction)


def _kernels(device: torch.device) -> _Kernels:
    return _COMPILED if device.type == "cuda" and not knobs.runtime.interpret else _INTERPRETED


def _specialisation(orders: Sequence[int], normalize: bool, normalization: str,
                    dtype: torch.dtype) -> dict[str, object]:
    """Constexpr arguments: first output column of each order (or -1) and the flags."""
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {sorted(NORMALIZATIONS)}, "
                         f"got {normalization!r}")
    if len(set(orders)) != len(orders) or any(not 0 <= l <= _gen.MAX_L for l in orders):
        raise ValueError(f"orders must be distinct and in 0..{_gen.MAX_L}, got {list(orders)}")
    missing = sorted(set(orders) - set(_gen.ORDERS))
    if missing:
        raise ValueError(f"the generated Triton kernels lack orders {missing}; regenerate them")
    offsets = dict.fromkeys(range(_gen.MAX_L + 1), -1)
    column = 0
    for l in orders:
        offsets[l] = column
        column += 2 * l + 1
    spec: dict[str, object] = {f"OFF{l}": offset for l, offset in offsets.items()}
    spec.update(NORMALIZE=bool(normalize), NORM=NORMALIZATIONS[normalization],
                COMPUTE=triton.language.float64 if dtype == torch.float64
                else triton.language.float32, BLOCK=BLOCK)
    return spec


def _dim(orders: Sequence[int]) -> int:
    return sum(2 * l + 1 for l in orders)


def _check_vectors(vectors: torch.Tensor) -> None:
    if vectors.dim() != 2 or vectors.shape[1] != 3:
        raise ValueError(f"vectors must have shape [N, 3], got {list(vectors.shape)}")
    if not vectors.is_floating_point():
        raise TypeError(f"vectors must be floating point, got {vectors.dtype}")


# --- custom ops ---------------------------------------------------------------------------------
@torch.library.custom_op("irrepscope::sph_triton_forward", mutates_args=())
def sph_triton_forward(vectors: torch.Tensor, orders: list[int], normalize: bool,
                       normalization: str) -> torch.Tensor:
    """Y [N, sum(2l+1)] of vectors [N, 3] (any strides) in one kernel launch."""
    _check_vectors(vectors)
    spec = _specialisation(orders, normalize, normalization, vectors.dtype)
    n = vectors.shape[0]
    out = torch.empty((n, _dim(orders)), dtype=vectors.dtype, device=vectors.device)
    if n and out.shape[1]:
        _kernels(vectors.device).forward[(triton.cdiv(n, BLOCK),)](
            vectors, out, n, vectors.stride(0), vectors.stride(1), out.stride(0),
            num_warps=NUM_WARPS, ROW_TILES=ROW_TILES, **spec)
    return out


@sph_triton_forward.register_fake
def _(vectors: torch.Tensor, orders: list[int], normalize: bool,
      normalization: str) -> torch.Tensor:
    return vectors.new_empty((vectors.shape[0], _dim(orders)))


@torch.library.custom_op("irrepscope::sph_triton_backward", mutates_args=())
def sph_triton_backward(grad: torch.Tensor, vectors: torch.Tensor, orders: list[int],
                        normalize: bool, normalization: str) -> torch.Tensor:
    """VJP [N, 3]: sum_k grad[:, k] dY_k/dvectors, grad [N, sum(2l+1)] (any strides)."""
    _check_vectors(vectors)
    spec = _specialisation(orders, normalize, normalization, vectors.dtype)
    n = vectors.shape[0]
    out = torch.empty((n, 3), dtype=vectors.dtype, device=vectors.device)
    if n:
        grad = grad.to(vectors.dtype)
        _kernels(vectors.device).backward[(triton.cdiv(n, BLOCK),)](
            grad, vectors, out, n, grad.stride(0), grad.stride(1),
            vectors.stride(0), vectors.stride(1), num_warps=NUM_WARPS, **spec)
    return out


@sph_triton_backward.register_fake
def _(grad: torch.Tensor, vectors: torch.Tensor, orders: list[int], normalize: bool,
      normalization: str) -> torch.Tensor:
    return torch.empty_like(vectors, memory_format=torch.contiguous_format)


def _setup_forward(ctx: object, inputs: tuple, output: torch.Tensor) -> None:
    vectors, orders, normalize, normalization = inputs
    ctx.save_for_backward(vectors)
    ctx.args = (list(orders), normalize, normalization)


def _backward_forward(ctx: object, grad: torch.Tensor) -> tuple:
    (vectors,) = ctx.saved_tensors
    return sph_triton_backward(grad, vectors, *ctx.args), None, None, None


def _setup_backward(ctx: object, inputs: tuple, output: torch.Tensor) -> None:
    grad, vectors, orders, normalize, normalization = inputs
    ctx.save_for_backward(grad, vectors)
    ctx.args = (list(orders), normalize, normalization)


def _backward_backward(ctx: object, grad_grad: torch.Tensor) -> tuple:
    """Double backward: autograd of the torch path's closed-form VJP (forces through a model)."""
    from irrepscope.sph.torch_backend import compute_dtype, vjp_flat

    grad, vectors = ctx.saved_tensors
    work = compute_dtype(vectors.dtype)
    with torch.enable_grad():
        v = vectors.detach().to(work).requires_grad_(True)
        g = grad.detach().to(work).requires_grad_(True)
        vjp = vjp_flat(g, v, *ctx.args)
        if not vjp.requires_grad:  # l = 0 alone: a constant, its VJP a constant zero
            return torch.zeros_like(grad), torch.zeros_like(vectors), None, None, None
        d_grad, d_vectors = torch.autograd.grad(vjp, (g, v), grad_grad.to(work),
                                                allow_unused=True)
    if d_vectors is None:  # orders <= 1 without normalisation are linear in the vector
        d_vectors = torch.zeros_like(v)
    if d_grad is None:
        d_grad = torch.zeros_like(g)
    return d_grad.to(grad.dtype), d_vectors.to(vectors.dtype), None, None, None


sph_triton_forward.register_autograd(_backward_forward, setup_context=_setup_forward)
sph_triton_backward.register_autograd(_backward_backward, setup_context=_setup_backward)


def compile_for_gpu(orders: Sequence[int], dtype: torch.dtype, normalize: bool = True,
                    arch: int = 90, normalization: str = "integral",
                    row_tiles: bool = ROW_TILES) -> tuple[dict, dict]:
    """Compiled code (forward, backward), {"ttir", "ptx", "cubin", ...}, for NVIDIA sm_``arch``.

    Needs no GPU: it checks that the generated kernels lower to real machine code.
    """
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    spec = _specialisation(orders, normalize, normalization, dtype)
    pointer = "*" + {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32",
                     torch.float64: "fp64"}[dtype]
    signatures = (
        {"vec_ptr": pointer, "out_ptr": pointer, "n": "i32", "vec_stride_n": "i32",
         "vec_stride_c": "i32", "out_stride_n": "i32"},
        {"grad_ptr": pointer, "vec_ptr": pointer, "gvec_ptr": pointer, "n": "i32",
         "grad_stride_n": "i32", "grad_stride_c": "i32", "vec_stride_n": "i32",
         "vec_stride_c": "i32"},
    )
    binaries = []
    specs = ({**spec, "ROW_TILES": row_tiles}, spec)
    for kernel, signature, constants in zip(_COMPILED, signatures, specs, strict=True):
        source = ASTSource(fn=kernel, signature={**signature,
                                                 **dict.fromkeys(constants, "constexpr")},
                           constexprs=constants)
        compiled = triton.compile(source, target=GPUTarget("cuda", arch, 32),
                                  options={"num_warps": NUM_WARPS})
        binaries.append(dict(compiled.asm))
    return binaries[0], binaries[1]


def spherical_harmonics_triton(orders: Sequence[int], vectors: torch.Tensor,
                               normalize: bool = True,
                               normalization: str = "integral") -> torch.Tensor:
    """Y [..., sum(2l+1)] of vectors [..., 3] for distinct ``orders`` in 0..10, one launch."""
    if vectors.shape[-1:] != (3,):
        raise ValueError(f"vectors must have shape [..., 3], got {list(vectors.shape)}")
    batch = vectors.shape[:-1]
    flat = vectors.reshape(-1, 3)  # a view whenever the strides allow it
    out = sph_triton_forward(flat, [int(l) for l in orders], bool(normalize), normalization)
    return out.reshape(*batch, out.shape[-1])
