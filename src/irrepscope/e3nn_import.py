"""Importing e3nn under any supported pair of versions (e3nn >= 0.4.4, torch >= 2.4), with no
process-wide setting left changed.

e3nn < 0.5 reads its own ``constants.pt`` with a bare ``torch.load`` at import time; torch >= 2.6
loads weights-only by default, and that file holds a ``slice``, which the weights-only unpickler
refuses, so ``import e3nn.o3`` fails. MACE works around it by setting
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` for the whole process, which turns every later
``torch.load`` without an explicit ``weights_only`` into a full unpickle. Instead, irrepscope
imports e3nn once with ``slice`` allowlisted for the duration of that import only
(``torch.serialization.safe_globals``, restored on exit). irrepscope's own loads always pass
``weights_only=True``, which that environment variable does not override.
"""

from __future__ import annotations

import sys
from importlib import metadata

# e3nn releases whose import-time torch.load needs `slice` allowlisted under torch >= 2.6
_FIRST_VERSION_WITHOUT_PICKLED_CONSTANTS = (0, 5)


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def needs_allowlisted_import() -> bool:
    """Whether the installed e3nn loads pickled constants when ``e3nn.o3`` is imported."""
    try:
        version = metadata.version("e3nn")
    except metadata.PackageNotFoundError:
        return False
    return _version_tuple(version) < _FIRST_VERSION_WITHOUT_PICKLED_CONSTANTS


def import_e3nn() -> None:
    """Import ``e3nn.o3`` once (see the module docstring); a no-op when it is already imported
    or when the installed e3nn needs nothing."""
    if "e3nn.o3" in sys.modules or not needs_allowlisted_import():
        return
    import torch

    safe_globals = getattr(torch.serialization, "safe_globals", None)
    if safe_globals is None:  # torch < 2.5 loads fully by default: nothing to allow
        import e3nn.o3  # noqa: F401
        return
    with safe_globals([slice]):
        import e3nn.o3  # noqa: F401
