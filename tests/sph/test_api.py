"""The public API: agreement with e3nn, equivariance, shapes, strides, bad input."""

from __future__ import annotations

import pytest
import torch
from e3nn import o3

from irrepscope.sph import backend_info, spherical_harmonics
from irrepscope.testing import assert_equivariant, tolerance

SETS = [list(range(11)), [0, 3, 4, 5, 6], [10], [2, 0, 1], [7, 9]]


def _vectors(n: int = 64, dtype: torch.dtype = torch.float64, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
                       ).to(dtype)


@pytest.mark.parametrize("normalization", ["integral", "component", "norm"])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("ls", SETS, ids=str)
def test_equals_e3nn(ls: list[int], normalize: bool, normalization: str) -> None:
    v = _vectors()
    ours = spherical_harmonics(ls, v, normalize, normalization)
    ref = o3.spherical_harmonics(ls, v, normalize, normalization)
    scale = max(1.0, ref.abs().max().item())
    assert (ours - ref).abs().max().item() <= 1e-10 * scale


def test_bare_int_is_refused_naming_both_readings() -> None:
    with pytest.raises(TypeError, match=r"spherical_harmonics\(2, \.\.\.\): a bare int reads two "
                       r"ways.*single order 2 \(5 columns\).*orders 0\.\.2 \(9 columns\)\. "
                       r"Pass \[2\] .* or range\(3\)"):
        spherical_harmonics(2, _vectors(4))
    assert spherical_harmonics([2], _vectors(4)).shape == o3.spherical_harmonics(2, _vectors(4),
                                                                                 True).shape


def test_range_is_lmax_and_backends_agree(float_dtype: torch.dtype) -> None:
    v = _vectors(dtype=float_dtype)
    ours = spherical_harmonics(range(5), v)
    assert ours.shape == (64, 25)
    ref = spherical_harmonics(list(range(5)), v, backend="e3nn")
    assert (ours - ref).abs().max().item() <= tolerance(float_dtype)
    info = backend_info()
    assert info["auto_cpu"] == "torch" and info["backends"]["torch"]


@pytest.mark.parametrize("ls", [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [3, 10, 0]], ids=str)
def test_equivariant_and_parity(ls: list[int]) -> None:
    irreps = "+".join(f"1x{l}{'e' if l % 2 == 0 else 'o'}" for l in ls)
    assert_equivariant(lambda v: spherical_harmonics(ls, v), "1x1o", irreps, _vectors(16))


def test_parity_sign() -> None:
    v = _vectors(8)
    for l in range(11):
        assert torch.allclose(spherical_harmonics([l], -v), (-1) ** l * spherical_harmonics([l], v),
                              atol=1e-12)


def test_strides_broadcast_and_empty() -> None:
    base = _vectors(40).reshape(5, 8, 3)
    strided = base.transpose(0, 1)[::2]  # non-contiguous [4, 5, 3]
    ref = spherical_harmonics([1, 4], strided.contiguous())
    assert torch.equal(spherical_harmonics([1, 4], strided), ref)
    wide = torch.randn(6, 3, dtype=torch.float64).t().contiguous().t()  # column-major
    assert torch.equal(spherical_harmonics(range(4), wide),
                       spherical_harmonics(range(4), wide.contiguous()))
    expanded = base[0, :1].expand(7, 3)  # stride 0 batch
    out = spherical_harmonics(range(3), expanded)
    assert out.shape == (7, 9) and torch.equal(out[0], out[6])
    assert spherical_harmonics([0, 3], torch.empty(0, 3)).shape == (0, 8)
    assert spherical_harmonics(range(3), torch.empty(2, 0, 3)).shape == (2, 0, 9)
    assert spherical_harmonics([0, 1], torch.tensor([1.0, 0.0, 0.0])).shape == (4,)


def test_zero_vectors_finite_with_zero_gradient() -> None:
    v = torch.zeros(3, 3, dtype=torch.float64)
    v[1] = torch.tensor([0.3, -0.2, 0.9])
    v.requires_grad_(True)
    out = spherical_harmonics(range(11), v)
    assert torch.isfinite(out).all()
    assert torch.allclose(out[0], o3.spherical_harmonics(list(range(11)), v[0:1].detach(), True)[0])
    g = torch.randn(out.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    (grad,) = torch.autograd.grad(out, v, g)
    assert torch.isfinite(grad).all() and grad[0].abs().max() == 0 and grad[1].abs().max() > 0


def test_nan_stays_in_its_row() -> None:
    v = torch.tensor([[float("nan"), 0.0, 1.0], [0.0, 1.0, 0.0]])
    out = spherical_harmonics([0, 1, 2], v)
    assert torch.isnan(out[0, 1:]).all() and torch.isfinite(out[1]).all()


@pytest.mark.parametrize("ls,exc,text", [
    (range(12), ValueError, "0..10"), ([3, 11], ValueError, "0..10"), ([-1], ValueError, "0..10"),
    ([2, 2], ValueError, "distinct"), ([], ValueError, "empty"), ("1o", TypeError, "ls"),
    ([1.5], TypeError, "ints"),
])
def test_bad_orders(ls: object, exc: type, text: str) -> None:
    with pytest.raises(exc, match=text):
        spherical_harmonics(ls, torch.randn(2, 3))


def test_bad_vectors_and_options() -> None:
    with pytest.raises(ValueError, match=r"\[\.\.\., 3\]"):
        spherical_harmonics([2], torch.randn(4, 2))
    with pytest.raises(TypeError, match="float16"):
        spherical_harmonics([2], torch.ones(4, 3, dtype=torch.int64))
    with pytest.raises(TypeError, match="Tensor"):
        spherical_harmonics([2], [[1.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="normalization"):
        spherical_harmonics([2], torch.randn(4, 3), normalization="unit")
    with pytest.raises(ValueError, match="backend"):
        spherical_harmonics([2], torch.randn(4, 3), backend="cuda")
