"""Public entry point: ``spherical_harmonics(ls, vectors, ...)``: e3nn's values, any order set.

Conventions (docs/conventions.md): e3nn's. y is the polar axis, components m=-l..l per order,
normalisations 'integral' (default, int Y^2 = 1 over the sphere), 'component' (sum_m Y_lm^2 =
2l+1) and 'norm' (|Y_l| = 1); ``normalize=True`` evaluates v / max(|v|, 1e-12). NaN policy: no
check is made; a NaN (or, with ``normalize``, an infinite) component gives NaN in that row only.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from numbers import Integral

import torch

from irrepscope.sph.orders import parse_orders

NORMALIZATIONS = ("integral", "component", "norm")
BACKENDS = ("auto", "torch", "triton", "e3nn")
_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _triton_available() -> bool:
    return importlib.util.find_spec("triton") is not None


def backend_info() -> dict[str, object]:
    """Available backends and the one ``backend='auto'`` picks on CPU and on CUDA."""
    cuda = torch.cuda.is_available()
    return {
        "backends": {"torch": True, "e3nn": importlib.util.find_spec("e3nn") is not None,
                     "triton": _triton_available() and cuda},
        "auto_cpu": "torch",
        "auto_cuda": "triton" if _triton_available() else "torch",
        "cuda_available": cuda,
        "max_l": 10,
    }


def _validate(vectors: torch.Tensor, normalize: bool, normalization: str, backend: str) -> None:
    if not isinstance(vectors, torch.Tensor):
        raise TypeError(f"vectors must be a torch.Tensor, got {type(vectors).__name__}")
    if vectors.dtype not in _FLOATS:
        raise TypeError(f"vectors must be float16, bfloat16, float32 or float64, "
                        f"got {vectors.dtype}")
    if vectors.dim() == 0 or vectors.shape[-1] != 3:
        raise ValueError(f"vectors must have shape [..., 3], got {list(vectors.shape)}")
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be a bool, got {type(normalize).__name__}")
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


def _refuse_bare_int(ls: object) -> None:
    if isinstance(ls, Integral) and not isinstance(ls, bool):
        l = int(ls)
        raise TypeError(
            f"spherical_harmonics({l}, ...): a bare int reads two ways, so it is refused: "
            f"e3nn.o3.spherical_harmonics({l}, x) means the single order {l} ({2 * l + 1} "
            f"columns), an l_max means orders 0..{l} ({(l + 1) ** 2} columns). Pass [{l}] for the "
            f"single order or range({l + 1}) for orders 0..{l}")


def spherical_harmonics(ls: int | Sequence[int], vectors: torch.Tensor, normalize: bool = True,
                        normalization: str = "integral", backend: str = "auto") -> torch.Tensor:
    """Real spherical harmonics [..., sum(2l+1)] of vectors [..., 3] for orders ``ls``.

    ``ls`` is a sequence of distinct orders in 0..10, in the output order (``range(l_max + 1)``
    for orders 0..l_max); only those orders are computed. The values equal
    ``e3nn.o3.spherical_harmonics(list(ls), ...)``. A bare int is refused (``TypeError``): e3nn
    reads ``2`` as the single order 2, an l_max reading as orders 0..2.
    """
    _refuse_bare_int(ls)
    orders = parse_orders(ls).orders
    _validate(vectors, normalize, normalization, backend)
    if backend == "auto":
        backend = backend_info()["auto_cuda" if vectors.is_cuda else "auto_cpu"]
    if backend == "e3nn":
        from e3nn import o3

        return o3.spherical_harmonics(list(orders), vectors, normalize, normalization)
    if backend == "triton":
        from irrepscope.sph.triton_backend import spherical_harmonics_triton

        return spherical_harmonics_triton(orders, vectors, normalize, normalization)
    from irrepscope.sph.torch_backend import spherical_harmonics_torch

    return spherical_harmonics_torch(orders, vectors, normalize, normalization)
