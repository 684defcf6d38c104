"""Triton spherical harmonics compiled for a CUDA device: forward, VJP and double backward equal
the closed-form torch path (run on the same device in float64) for every normalisation, with
and without ``normalize``, for each order alone and for the order sets users run."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("triton")

from irrepscope.sph import api  # noqa: E402
from irrepscope.sph import triton_backend as tb  # noqa: E402
from irrepscope.testing import tolerance  # noqa: E402

pytestmark = pytest.mark.gpu

N = 3 * tb.BLOCK * 97 + 29  # many programs, the last one masked
NORMALIZATIONS = ["integral", "component", "norm"]
SETS = {"[0..10]": list(range(11)), "[0,3,4,5,6]": [0, 3, 4, 5, 6], "[10]": [10]}


def _vectors(n: int, dtype: torch.dtype, normalize: bool, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator(device="cuda").manual_seed(seed)
    v = torch.randn(n, 3, device="cuda", dtype=torch.float64, generator=generator)
    if not normalize:  # |v| in [0.5, 1.5]: r^l stays moderate up to l = 10
        v = v / v.norm(dim=-1, keepdim=True) * (0.5 + torch.rand(n, 1, device="cuda",
                                                                   dtype=torch.float64,
                                                                   generator=generator))
    return v.to(dtype)


def _torch_path(ls, v, normalize, normalization):
    return api.spherical_harmonics(ls, v, normalize=normalize, normalization=normalization,
                                   backend="torch")


def _value_grad_second(fn, ls, v, normalize, normalization, c, w):
    """Y(v), d<c, Y>/dv and d<w, d<c, Y>/dv>/dv (the double backward that forces training uses)."""
    v = v.detach().requires_grad_(True)
    y = fn(ls, v, normalize, normalization)
    if not y.requires_grad:  # l = 0 alone: a constant, which may carry no graph at all
        return y.detach(), torch.zeros_like(v), torch.zeros_like(v)
    (grad,) = torch.autograd.grad((y * c).sum(), v, create_graph=True, materialize_grads=True)
    if not grad.requires_grad:  # l = 0 alone: a constant, no second derivative
        return y.detach(), grad.detach(), torch.zeros_like(v)
    (second,) = torch.autograd.grad((grad * w).sum(), v)
    return y.detach(), grad.detach(), second


def _assert_matches_torch_path(ls, dtype, normalize, normalization, n=N, seed=0):
    v = _vectors(n, dtype, normalize, seed)
    generator = torch.Generator(device="cuda").manual_seed(seed + 1)
    width = sum(2 * l + 1 for l in ls)
    c = torch.randn(n, width, device="cuda", dtype=torch.float64, generator=generator)
    w = torch.randn(n, 3, device="cuda", dtype=torch.float64, generator=generator)
    got = _value_grad_second(tb.spherical_harmonics_triton, ls, v, normalize, normalization,
                             c.to(dtype), w.to(dtype))
    want = _value_grad_second(_torch_path, ls, v.double(), normalize, normalization, c, w)
    assert got[0].dtype == dtype and got[0].shape == (n, width)
    for name, a, b in zip(("forward", "VJP", "double backward"), got, want, strict=True):
        # each relative to its own size: derivatives of order l grow like l and l^2
        scale = max(1.0, b.abs().max().item())
        torch.testing.assert_close(a.double(), b, atol=tolerance(dtype) * scale, rtol=0,
                                   msg=lambda m, name=name: f"{name} of {ls}: {m}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("normalization", NORMALIZATIONS)
@pytest.mark.parametrize("normalize", [True, False], ids=["normalize", "raw"])
@pytest.mark.parametrize("key", list(SETS))
def test_order_sets_equal_torch_path(key, normalize, normalization, dtype) -> None:
    _assert_matches_torch_path(SETS[key], dtype, normalize, normalization)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("l", range(11))
def test_every_order_alone_equals_torch_path(l, dtype) -> None:
    _assert_matches_torch_path([l], dtype, True, "integral", seed=l)


def test_more_values_than_int32_can_index() -> None:
    """N x D above 2^31: offsets must be 64-bit (the last rows land where they belong)."""
    ls = list(range(11))
    n = (1 << 31) // 121 + 3 * tb.BLOCK + 5
    v = torch.randn(n, 3, device="cuda")
    out = tb.spherical_harmonics_triton(ls, v)
    tail = slice(n - 1000, n)
    want = _torch_path(ls, v[tail].double(), True, "integral")
    torch.testing.assert_close(out[tail].double(), want, atol=1e-5, rtol=0)


def test_auto_backend_picks_triton_on_cuda() -> None:
    v = _vectors(1000, torch.float32, True)
    assert api.backend_info()["auto_cuda"] == "triton"
    torch.testing.assert_close(api.spherical_harmonics([0, 3, 4, 5, 6], v, backend="auto"),
                               tb.spherical_harmonics_triton([0, 3, 4, 5, 6], v), atol=0, rtol=0)
