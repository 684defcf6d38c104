"""Building modules in a given floating dtype (e3nn and cuequivariance take the default dtype)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype | None) -> Iterator[None]:
    """Within the block, torch's default dtype is ``dtype`` (None: unchanged); restored after.

    Modules built inside create their constants (Clebsch-Gordan tables, SO(3) generators) in
    ``dtype``: upcasting float32 constants afterwards leaves ~1e-8 errors.
    """
    previous = torch.get_default_dtype()
    if dtype is not None:
        torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)
