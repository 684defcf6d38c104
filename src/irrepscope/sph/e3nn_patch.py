"""Route e3nn's spherical harmonics through irrepscope, reversibly.

``patch_e3nn()`` replaces ``e3nn.o3.SphericalHarmonics.forward``; ``e3nn.o3.spherical_harmonics``
builds that module and calls it, so both the function and every module (existing instances
included) are routed. Every normalisation and ``normalize`` value is served; order lists with
repeats (``"2x1o"``) are computed once per distinct order and gathered; orders above 10 and
non-floating inputs fall back to e3nn's own code. Outputs keep e3nn's layout ``[..., dim]``.

Use as a plain call (``patch_e3nn()`` ... ``unpatch_e3nn()``) or a context manager
(``with patch_e3nn(): ...``), which undoes only the patch it made. A patched module is not
TorchScript-able: unpatch before ``torch.jit.script``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import TracebackType

import torch
from e3nn.o3 import _spherical_harmonics as _e3nn_sh

MAX_ORDER = 10


def _routed_forward(original: Callable) -> Callable:
    @functools.wraps(original)
    def forward(self: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        ls = list(self._ls_list)
        if max(ls) > MAX_ORDER or not x.is_floating_point() or x.shape[-1:] != (3,):
            return original(self, x)
        return _irrepscope_sh(ls, x, self.normalize, self.normalization)

    forward.__irrepscope_patch__ = True
    return forward


def _irrepscope_sh(ls: list[int], x: torch.Tensor, normalize: bool,
                   normalization: str) -> torch.Tensor:
    """e3nn's output for order list ``ls`` (repeats allowed), computed by irrepscope."""
    from irrepscope.sph.api import spherical_harmonics

    distinct = list(dict.fromkeys(ls))
    out = spherical_harmonics(distinct, x, normalize=normalize, normalization=normalization,
                              backend="auto")
    if len(distinct) == len(ls):
        return out
    start, columns = 0, {}
    for l in distinct:
        columns[l] = range(start, start + 2 * l + 1)
        start += 2 * l + 1
    index = torch.tensor([c for l in ls for c in columns[l]], device=out.device)
    return out.index_select(-1, index)


def e3nn_patched() -> bool:
    """Whether e3nn's spherical harmonics currently go through irrepscope."""
    return getattr(_e3nn_sh.SphericalHarmonics.forward, "__irrepscope_patch__", False)


class E3nnPatch:
    """Handle returned by :func:`patch_e3nn`; as a context manager it undoes its own patch."""

    def __init__(self, applied: bool) -> None:
        self.applied = applied  # False when e3nn was already patched before this call

    def __enter__(self) -> E3nnPatch:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self.applied:
            unpatch_e3nn()


def patch_e3nn() -> E3nnPatch:
    """Route ``e3nn.o3.spherical_harmonics`` and ``e3nn.o3.SphericalHarmonics`` via irrepscope."""
    if e3nn_patched():
        return E3nnPatch(applied=False)
    cls = _e3nn_sh.SphericalHarmonics
    cls.forward = _routed_forward(cls.forward)
    return E3nnPatch(applied=True)


def unpatch_e3nn() -> None:
    """Restore e3nn's own spherical harmonics (a no-op when not patched)."""
    cls = _e3nn_sh.SphericalHarmonics
    if e3nn_patched():
        cls.forward = cls.forward.__wrapped__
