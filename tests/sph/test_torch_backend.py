"""Closed-form backward and double backward (float64 gradcheck, random cotangents), compile."""

from __future__ import annotations

import pytest
import torch

from irrepscope.sph import spherical_harmonics


@pytest.mark.parametrize("l", range(11))
@pytest.mark.parametrize("normalize", [True, False])
def test_gradcheck_and_gradgradcheck(l: int, normalize: bool) -> None:
    g = torch.Generator().manual_seed(l)
    v = torch.randn(4, 3, generator=g, dtype=torch.float64).requires_grad_(True)
    cot = torch.randn(4, 2 * l + 1, generator=g, dtype=torch.float64)
    fn = lambda t: spherical_harmonics([l], t, normalize, "norm")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (v,))
    assert torch.autograd.gradgradcheck(fn, (v,), (cot,))


def test_set_gradient_matches_e3nn() -> None:
    from e3nn import o3

    g = torch.Generator().manual_seed(5)
    v = torch.randn(32, 3, generator=g, dtype=torch.float64).requires_grad_(True)
    cot = torch.randn(32, 41, generator=g, dtype=torch.float64)
    ls = [0, 3, 4, 5, 6]
    (ours,) = torch.autograd.grad(spherical_harmonics(ls, v), v, cot)
    (ref,) = torch.autograd.grad(o3.spherical_harmonics(ls, v, True), v, cot)
    assert (ours - ref).abs().max().item() <= 1e-10


def test_half_gradient_dtype() -> None:
    v = torch.randn(5, 3, dtype=torch.bfloat16, requires_grad=True)
    spherical_harmonics(range(4), v).sum().backward()
    assert v.grad.dtype == torch.bfloat16 and torch.isfinite(v.grad).all()


def test_compiled_equals_eager() -> None:
    torch._dynamo.reset()
    fn = torch.compile(lambda t: spherical_harmonics([0, 2], t), fullgraph=True)
    v = torch.randn(16, 3, requires_grad=True)
    cot = torch.randn(16, 6)
    out = fn(v)
    assert torch.allclose(out, spherical_harmonics([0, 2], v), atol=1e-6)
    (grad,) = torch.autograd.grad(out, v, cot)
    (ref,) = torch.autograd.grad(spherical_harmonics([0, 2], v), v, cot)
    assert torch.allclose(grad, ref, atol=1e-5)


def test_blocked_evaluation_equals_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large inputs run in cache-sized blocks: same values, gradients and double backward."""
    from irrepscope.sph import torch_backend

    g = torch.Generator().manual_seed(3)
    v = torch.randn(37, 3, generator=g, dtype=torch.float64).requires_grad_(True)
    cot = torch.randn(37, 41, generator=g, dtype=torch.float64)
    ls = [0, 3, 4, 5, 6]

    def first_and_second(chunk: int) -> tuple[torch.Tensor, ...]:
        monkeypatch.setattr(torch_backend, "CHUNK", chunk)
        out = spherical_harmonics(ls, v)
        (grad,) = torch.autograd.grad(out, v, cot, create_graph=True)
        (second,) = torch.autograd.grad(grad.square().sum(), v)
        return out, grad, second

    for ours, ref in zip(first_and_second(8), first_and_second(1 << 20), strict=True):
        torch.testing.assert_close(ours, ref, atol=1e-12, rtol=0)


def test_blocks_of_vectors_on_a_cpu_only(monkeypatch) -> None:
    """CPU: cache-sized blocks; any other device: one call (a block there costs launches)."""
    from irrepscope.sph import torch_backend

    monkeypatch.setattr(torch_backend, "CHUNK", 4)
    calls = []

    def count(v):
        calls.append(v.shape[0])
        return v * 2

    for device, expected in (("cpu", [4, 4, 2]), ("meta", [10])):
        calls.clear()
        out = torch_backend._chunked(count, 10, torch.ones(10, 3, device=device))
        assert calls == expected and out.shape == (10, 3) and out.device.type == device


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_zero_vector_has_zero_first_and_second_derivatives(dtype: torch.dtype) -> None:
    """Documented: the gradient is exactly zero for |v| <= 1e-12, so is its derivative."""
    v = torch.tensor([[0.0, 0.0, 0.0], [1e-13, 0.0, 0.0], [0.3, -0.4, 1.2]], dtype=dtype,
                     requires_grad=True)
    cot = torch.linspace(-1.0, 1.0, 16, dtype=dtype).repeat(3, 1)
    (grad,) = torch.autograd.grad(spherical_harmonics([0, 1, 2, 3], v), v, cot,
                                  create_graph=True)
    assert torch.equal(grad[:2], torch.zeros(2, 3, dtype=dtype))
    (second,) = torch.autograd.grad((grad * torch.tensor([1.0, -2.0, 0.5], dtype=dtype)).sum(),
                                    v)
    assert torch.isfinite(second).all()
    assert torch.equal(second[:2], torch.zeros(2, 3, dtype=dtype))
    assert second[2].abs().sum() > 0
