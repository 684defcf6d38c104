"""Test helpers shared by every layer's tests: tolerances, random symmetry operations, equivariance.

Modelled on ``e3nn.util.test``: each helper works in float64 unless told otherwise, so that a
failure points at the layer rather than at rounding.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from e3nn import o3


def tolerance(dtype: torch.dtype) -> float:
    """Absolute tolerance for an O(1) quantity computed in ``dtype``."""
    return {
        torch.float64: 1e-10,
        torch.float32: 1e-4,
        torch.float16: 5e-2,
        torch.bfloat16: 1e-1,
    }[dtype]


def random_rotation(
    dtype: torch.dtype = torch.float64, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A uniformly random proper rotation matrix, shape [3, 3]."""
    q = torch.randn(4, dtype=torch.float64, generator=generator)
    q = q / q.norm()
    return o3.quaternion_to_matrix(q).to(dtype)


def rotate_irreps(irreps: o3.Irreps | str, x: torch.Tensor, rotation: torch.Tensor,
                  parity: bool = False) -> torch.Tensor:
    """Apply rotation (and inversion when ``parity``) to features ``x`` [..., irreps.dim]."""
    irreps = o3.Irreps(irreps)
    matrix = rotation if not parity else -rotation
    d = irreps.D_from_matrix(matrix.to(torch.float64)).to(x.dtype)
    return x @ d.T


def assert_equivariant(
    fn: Callable[[torch.Tensor], torch.Tensor],
    irreps_in: o3.Irreps | str,
    irreps_out: o3.Irreps | str,
    inputs: torch.Tensor,
    *,
    parity: bool = True,
    atol: float | None = None,
    trials: int = 3,
    seed: int = 0,
) -> None:
    """Check fn(D_in x) == D_out fn(x) for random rotations (and inversion) in ``inputs``' dtype."""
    atol = tolerance(inputs.dtype) if atol is None else atol
    generator = torch.Generator().manual_seed(seed)
    for trial in range(trials):
        rotation = random_rotation(generator=generator)
        for inversion in ([False, True] if parity else [False]):
            expected = rotate_irreps(irreps_out, fn(inputs), rotation, inversion)
            actual = fn(rotate_irreps(irreps_in, inputs, rotation, inversion))
            err = (expected - actual).abs().max().item() if actual.numel() else 0.0
            scale = max(1.0, expected.abs().max().item() if expected.numel() else 1.0)
            if err > atol * scale:
                raise AssertionError(
                    f"not equivariant (trial {trial}, inversion={inversion}): "
                    f"max |error| {err:.3e} > {atol * scale:.3e}"
                )
