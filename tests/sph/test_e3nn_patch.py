"""patch_e3nn routes e3nn's spherical harmonics through irrepscope, identically and reversibly."""

from __future__ import annotations

import pytest
import torch
from e3nn import o3
from e3nn.nn import Gate

import irrepscope.sph.api as api
from irrepscope.sph import e3nn_patched, patch_e3nn, unpatch_e3nn


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """Orders of every call that reached irrepscope (proves the routing happened)."""
    seen: list[list[int]] = []
    original = api.spherical_harmonics

    def counting(ls, *args, **kwargs):
        seen.append(list(ls))
        return original(ls, *args, **kwargs)

    monkeypatch.setattr(api, "spherical_harmonics", counting)
    yield seen
    unpatch_e3nn()


class _TinyModel(torch.nn.Module):
    """Edge vectors -> SH -> tensor product with node features -> gate -> scalar per node."""

    def __init__(self) -> None:
        super().__init__()
        self.sh = o3.SphericalHarmonics("1x0e+1x1o+1x2e+1x3o", normalize=True,
                                        normalization="component")
        self.gate = Gate("4x0e", [torch.tanh], "2x0e", [torch.sigmoid], "1x1o+1x2e")
        self.tp = o3.FullyConnectedTensorProduct("3x0e+2x1o", self.sh.irreps_out,
                                                 self.gate.irreps_in)
        self.out = o3.Linear(self.gate.irreps_out, "1x0e")

    def forward(self, features: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
        return self.out(self.gate(self.tp(features, self.sh(vectors))))


def test_small_e3nn_model_same_outputs_and_gradients(calls: list[list[int]]) -> None:
    torch.manual_seed(0)
    model = _TinyModel().double()
    features = torch.randn(23, 9, dtype=torch.float64)
    vectors = torch.randn(23, 3, dtype=torch.float64)
    cotangent = torch.randn(23, 1, dtype=torch.float64)

    def run() -> tuple[torch.Tensor, ...]:
        model.zero_grad()
        v = vectors.clone().requires_grad_(True)
        out = model(features, v)
        out.backward(cotangent)
        return (out.detach(), v.grad, *(p.grad.clone() for p in model.parameters()))

    unpatched = run()
    with patch_e3nn():
        assert e3nn_patched()
        patched = run()
    assert not e3nn_patched()
    assert calls == [[0, 1, 2, 3]]
    assert run()[0].equal(unpatched[0])
    for got, want in zip(patched, unpatched, strict=True):
        torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("normalization", ["integral", "component", "norm"])
@pytest.mark.parametrize("normalize", [True, False])
def test_function_every_normalization(calls: list[list[int]], normalize: bool,
                                      normalization: str) -> None:
    vectors = torch.randn(17, 3, dtype=torch.float64)
    for ls in ([0, 3, 4, 5, 6], [10], 7, "1x2e+1x1o", "2x1o+1x0e"):
        want = o3.spherical_harmonics(ls, vectors, normalize, normalization)
        with patch_e3nn():
            got = o3.spherical_harmonics(ls, vectors, normalize, normalization)
        torch.testing.assert_close(got, want, atol=1e-11, rtol=1e-11)
    assert len(calls) == 5


def test_unservable_orders_fall_back_to_e3nn(calls: list[list[int]]) -> None:
    vectors = torch.randn(5, 3, dtype=torch.float64)
    want = o3.spherical_harmonics([2, 11], vectors, True)
    with patch_e3nn():
        got = o3.spherical_harmonics([2, 11], vectors, True)
    assert calls == []
    torch.testing.assert_close(got, want)


def test_plain_call_nesting_and_undo(calls: list[list[int]]) -> None:
    original = o3.SphericalHarmonics.forward
    patch_e3nn()
    with patch_e3nn():  # already patched: leaving this block must not undo the outer patch
        pass
    assert e3nn_patched()
    module = o3.SphericalHarmonics([1, 2], normalize=True)  # built while patched
    module(torch.randn(4, 3))
    unpatch_e3nn()
    unpatch_e3nn()  # idempotent
    assert not e3nn_patched() and o3.SphericalHarmonics.forward is original
    module(torch.randn(4, 3))
    assert calls == [[1, 2]]
