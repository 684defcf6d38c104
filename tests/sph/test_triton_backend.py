"""Triton backend on CPU through Triton's interpreter: equals e3nn (the specification the torch
path also meets) and the torch path, forward, VJP and double backward."""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():  # CPU: Triton's interpreter, set before any kernel is wrapped
    os.environ["TRITON_INTERPRET"] = "1"

pytest.importorskip("triton")

from e3nn import o3  # noqa: E402

from irrepscope.sph import api  # noqa: E402
from irrepscope.sph import triton_backend as tb  # noqa: E402
from irrepscope.testing import tolerance  # noqa: E402

N = 2 * tb.BLOCK + 37  # three programs, the last one masked


def _vectors(n: int, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=generator, dtype=torch.float64).to(dtype)


def _reference(ls, vectors, normalize=True, normalization="integral"):
    return o3.spherical_harmonics(list(ls), vectors, normalize, normalization)


def _forward_backward(fn, ls, vectors, cotangent, **kwargs):
    vectors = vectors.detach().requires_grad_(True)
    out = fn(ls, vectors, **kwargs)
    if not out.requires_grad:  # a constant output (l = 0 alone) may carry no graph at all
        return out.detach(), torch.zeros_like(vectors)
    (grad,) = torch.autograd.grad(out, vectors, cotangent, materialize_grads=True)
    return out.detach(), grad


def _assert_matches(ls, vectors, normalize=True, normalization="integral", seed=1, *,
                    reference=_reference):
    width = sum(2 * l + 1 for l in ls)
    generator = torch.Generator().manual_seed(seed)
    cotangent = torch.randn(*vectors.shape[:-1], width, generator=generator,
                            dtype=torch.float64).to(vectors.dtype)
    kwargs = dict(normalize=normalize, normalization=normalization)
    out, grad = _forward_backward(tb.spherical_harmonics_triton, ls, vectors, cotangent, **kwargs)
    ref, ref_grad = _forward_backward(reference, ls, vectors, cotangent, **kwargs)
    assert out.shape == ref.shape and out.dtype == vectors.dtype
    # un-normalised inputs give |v|^l-sized values, gradients of order l scale like l^2:
    # compare each relative to its own size
    atol = tolerance(vectors.dtype)
    torch.testing.assert_close(out, ref, atol=atol * max(1.0, ref.abs().max().item()), rtol=0)
    scale = max(1.0, ref_grad.abs().max().item())
    torch.testing.assert_close(grad, ref_grad, atol=atol * scale, rtol=0)


@pytest.mark.parametrize("l", range(11))
def test_every_order_alone(l: int, float_dtype: torch.dtype) -> None:
    _assert_matches([l], _vectors(N, float_dtype, seed=l))


def _torch_path(ls, vectors, normalize=True, normalization="integral"):
    return api.spherical_harmonics(ls, vectors, normalize=normalize,
                                   normalization=normalization, backend="torch")


def test_equals_torch_path() -> None:
    for dtype in (torch.float32, torch.float64):
        for ls, normalize in (([10], True), ([0, 3, 4, 5, 6], False), ([9, 1, 8], True)):
            vectors = _vectors(N, dtype, seed=len(ls))
            _assert_matches(ls, vectors, normalize, "norm", reference=_torch_path)


def test_api_backend_triton_and_auto_choice() -> None:
    vectors = _vectors(N, torch.float64).reshape(N, 1, 3)
    out = api.spherical_harmonics([4, 0], vectors, backend="triton")
    torch.testing.assert_close(out, _torch_path([4, 0], vectors), atol=1e-12, rtol=0)
    assert api.backend_info()["auto_cuda"] == "triton"  # triton is importable here


@pytest.mark.parametrize(("ls", "normalize", "normalization"), [
    ([0, 3, 4, 5, 6], True, "integral"),
    ([10, 0, 2], True, "norm"),
    ([1, 7], False, "component"),
    (list(range(11)), True, "component"),
    ([5, 2, 9], False, "integral"),
])
def test_mixed_order_sets(ls: list[int], normalize: bool, normalization: str) -> None:
    vectors = _vectors(N, torch.float64, seed=7)
    if not normalize:
        vectors = vectors / vectors.norm(dim=-1, keepdim=True) * 1.3  # keep r^l moderate
    _assert_matches(ls, vectors, normalize, normalization)


@pytest.mark.parametrize("n", [0, 1])
def test_empty_and_single_vector(n: int) -> None:
    ls = [0, 2, 5]
    out = tb.spherical_harmonics_triton(ls, _vectors(n, torch.float64))
    assert out.shape == (n, 1 + 5 + 11)
    if n:
        _assert_matches(ls, _vectors(n, torch.float64))
    vectors = _vectors(n, torch.float64).requires_grad_(True)
    tb.spherical_harmonics_triton(ls, vectors).sum().backward()
    assert vectors.grad.shape == (n, 3)


def test_zero_and_tiny_vectors_match_torch_path() -> None:
    vectors = _vectors(N, torch.float64)
    vectors[3] = 0.0
    vectors[7] = 1e-13  # below normalize's eps: e3nn's v / 1e-12, gradient defined as zero
    _assert_matches([0, 1, 2, 5], vectors, reference=_torch_path)
    out = tb.spherical_harmonics_triton([0, 1, 2, 5], vectors)
    assert torch.isfinite(out).all()


def test_non_contiguous_and_batched_input() -> None:
    base = _vectors(3 * N, torch.float64).reshape(N, 9)
    strided = base[:, 1::3]  # [N, 3] with strides (9, 3)
    assert not strided.is_contiguous()
    _assert_matches([0, 3, 4], strided)
    transposed = _vectors(N, torch.float64).T.contiguous().T  # strides (1, N)
    _assert_matches([2, 6], transposed)
    batched = _vectors(2 * 5 * 7, torch.float64).reshape(2, 5, 7, 3).transpose(0, 1)
    _assert_matches([1, 4], batched)


def test_order_sets_back_to_back_then_both_backward() -> None:
    v1 = _vectors(N, torch.float64, seed=3).requires_grad_(True)
    v2 = _vectors(N, torch.float64, seed=4).requires_grad_(True)
    a = tb.spherical_harmonics_triton([1, 8], v1, normalization="norm")
    b = tb.spherical_harmonics_triton([6, 0, 3], v2, normalize=False)
    ca, cb = torch.randn_like(a), torch.randn_like(b)
    (gb,) = torch.autograd.grad(b, v2, cb)  # backward in the opposite order
    (ga,) = torch.autograd.grad(a, v1, ca)
    ra, rga = _forward_backward(_reference, [1, 8], v1, ca, normalize=True,
                                normalization="norm")
    rb, rgb = _forward_backward(_reference, [6, 0, 3], v2, cb, normalize=False,
                                normalization="integral")
    for got, want in ((a, ra), (b, rb), (ga, rga), (gb, rgb)):
        torch.testing.assert_close(got.detach(), want, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_computes_in_float32_and_rounds_once(dtype: torch.dtype) -> None:
    vectors = _vectors(N, dtype)
    out = tb.spherical_harmonics_triton([0, 3, 10], vectors, normalization="component")
    in_float32 = tb.spherical_harmonics_triton([0, 3, 10], vectors.float(),
                                               normalization="component")
    assert out.dtype == dtype
    rounded = in_float32.to(dtype)  # the same float32 arithmetic, rounded once
    if dtype == torch.bfloat16:  # CPU tensors run in Triton's interpreter, which truncates
        # float32 -> bfloat16 (compiled kernels round to nearest even, as torch does)
        spacing = torch.finfo(dtype).eps * in_float32.abs()
        assert ((out.float() - in_float32).abs() <= spacing).all()
    else:
        assert torch.equal(out, rounded)
    exact = _reference([0, 3, 10], vectors.double(), normalization="component")
    bound = torch.finfo(dtype).eps * exact.abs() + 1e-5  # one rounding + float32 error
    assert ((out.double() - exact).abs() <= bound).all()


def test_gradcheck_and_double_backward() -> None:
    def fn(v: torch.Tensor) -> torch.Tensor:
        return tb.spherical_harmonics_triton([0, 2, 3], v, normalization="norm")

    assert torch.autograd.gradcheck(fn, (_vectors(3, torch.float64).requires_grad_(True),))
    # forces-style training: d/dv <w, dE/dv> with E = <c, Y(v)>, against the torch path
    vectors = _vectors(N, torch.float64, seed=5)
    c = torch.randn(N, 1 + 5 + 7, dtype=torch.float64)
    w = torch.randn(N, 3, dtype=torch.float64)
    results = []
    for fn in (tb.spherical_harmonics_triton, _reference):
        for normalize in (True, False):
            v = vectors.clone().requires_grad_(True)
            (force,) = torch.autograd.grad((fn([0, 2, 3], v, normalize=normalize,
                                               normalization="norm") * c).sum(), v,
                                           create_graph=True)
            (second,) = torch.autograd.grad((force * w).sum(), v)
            results.append(second)
    torch.testing.assert_close(results[0], results[2], atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(results[1], results[3], atol=1e-9, rtol=1e-9)


def test_fake_implementations_opcheck() -> None:
    vectors = _vectors(19, torch.float64).requires_grad_(True)
    torch.library.opcheck(tb.sph_triton_forward, (vectors, [2, 0, 5], True, "integral"),
                          test_utils=("test_schema", "test_faketensor",
                                      "test_autograd_registration"))
    grad = _vectors(19 * 12, torch.float64).reshape(19, 36)
    torch.library.opcheck(tb.sph_triton_backward, (grad, vectors.detach(), [2, 0, 5], False,
                                                   "norm"),
                          test_utils=("test_schema", "test_faketensor"))


@pytest.mark.parametrize("backend", [
    "aot_eager",  # Dynamo + AOTAutograd: fake impls, autograd registration, no graph break
    pytest.param("inductor", marks=pytest.mark.slow),  # + C++ codegen around the op (~20 s)
])
def test_torch_compile_fullgraph_matches_eager(backend: str) -> None:
    torch._dynamo.reset()
    vectors = _vectors(N, torch.float32).requires_grad_(True)

    def energy(v: torch.Tensor) -> torch.Tensor:
        return (tb.spherical_harmonics_triton([0, 3, 4], v) ** 2).sum(-1)

    compiled = torch.compile(energy, fullgraph=True, backend=backend)
    eager_out = energy(vectors)
    (eager_grad,) = torch.autograd.grad(eager_out.sum(), vectors)
    out = compiled(vectors)
    (grad,) = torch.autograd.grad(out.sum(), vectors)
    torch.testing.assert_close(out, eager_out)
    torch.testing.assert_close(grad, eager_grad)


def test_bad_arguments_raise() -> None:
    vectors = _vectors(4, torch.float64)
    with pytest.raises(ValueError, match="distinct"):
        tb.spherical_harmonics_triton([1, 1], vectors)
    with pytest.raises(ValueError, match="normalization"):
        tb.spherical_harmonics_triton([1], vectors, normalization="unit")
    with pytest.raises(ValueError, match=r"\[\.\.\., 3\]"):
        tb.spherical_harmonics_triton([1], vectors[:, :2])


def test_kernels_compile_for_a_gpu_without_one() -> None:
    """The generated code is real Triton, not interpreter-only: lower it to sm_90 machine code.

    In float64 no float32 value may appear anywhere (constants included); half precision
    computes in float32.
    """
    for asm in tb.compile_for_gpu([0, 3], torch.float64, normalize=True, arch=90):
        assert len(asm["cubin"]) > 0
        assert "f64" in asm["ttir"] and "f32" not in asm["ttir"]
    for asm in tb.compile_for_gpu([2], torch.float16, normalize=False, arch=90):
        assert "f32" in asm["ttir"] and len(asm["cubin"]) > 0


@pytest.mark.slow
def test_all_orders_compile_for_a_gpu() -> None:
    for dtype in (torch.float32, torch.float64):
        assert all(len(asm["cubin"]) > 0
                   for asm in tb.compile_for_gpu(list(range(11)), dtype, True, 90))


@pytest.mark.gpu
def test_gpu_equals_cpu_and_no_recompile_for_new_n() -> None:
    vectors = _vectors(4099, torch.float32)
    for n in (4099, 1000, 77):
        out = tb.spherical_harmonics_triton([0, 3, 4, 5, 6], vectors[:n].cuda()).cpu()
        torch.testing.assert_close(out, _reference([0, 3, 4, 5, 6], vectors[:n]), atol=1e-5,
                                   rtol=0)
    vectors = vectors.cuda()
    tb.spherical_harmonics_triton([2, 9], vectors)
    cache = tb._COMPILED.forward.device_caches[torch.cuda.current_device()][0]
    compiled = len(cache)
    for n in (4099, 1000, 77, 1):
        tb.spherical_harmonics_triton([2, 9], vectors[:n])
    assert len(cache) == compiled


@pytest.mark.parametrize("ls", [list(range(11)), [0, 3, 4, 5, 6], [9, 1, 8]], ids=str)
def test_row_tile_and_column_stores_write_the_same_bits(ls, monkeypatch) -> None:
    """The store strategy moves values, never changes them."""
    vectors = _vectors(N, torch.float64, seed=11)
    outputs = []
    for row_tiles in (True, False):
        monkeypatch.setattr(tb, "ROW_TILES", row_tiles)
        outputs.append(tb.spherical_harmonics_triton(ls, vectors, normalization="norm"))
    assert torch.equal(outputs[0], outputs[1])
    _assert_matches(ls, vectors, normalization="norm")  # ROW_TILES False here: both checked


def test_double_backward_of_order_zero_alone_is_zero() -> None:
    """Y_0 is a constant: its force-style double backward is zero, not an autograd error."""
    vectors = _vectors(5, torch.float64).requires_grad_(True)
    y = tb.spherical_harmonics_triton([0], vectors)
    (grad,) = torch.autograd.grad(y.sum(), vectors, create_graph=True, materialize_grads=True)
    assert torch.equal(grad, torch.zeros_like(vectors))
    if grad.requires_grad:
        (second,) = torch.autograd.grad(grad.sum(), vectors, materialize_grads=True)
        assert torch.equal(second, torch.zeros_like(vectors))
