"""irrepscope: closed-form spherical harmonics, an equivariant GNN on QM9, and irrep analysis."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from irrepscope.e3nn_import import import_e3nn

__version__ = "0.1.0"

import_e3nn()  # e3nn 0.4.4 under torch >= 2.6 (see irrepscope.e3nn_import)

if TYPE_CHECKING:
    import torch

__all__ = ["__version__", "build_model", "load_config", "spherical_harmonics"]


def load_config(path: Any, overrides: Any = ()) -> Any:
    """Load and validate a YAML run config (see ``irrepscope.train.config``)."""
    from irrepscope.train.config import load_config as _load

    return _load(path, overrides)


def build_model(config: Any) -> torch.nn.Module:
    """Build the equivariant GNN described by a validated config (see ``irrepscope.model.gnn``)."""
    from irrepscope.model.gnn import build_model as _build

    return _build(config)


def spherical_harmonics(*args: Any, **kwargs: Any) -> torch.Tensor:
    """Real spherical harmonics in e3nn's conventions (see ``irrepscope.sph.api``)."""
    from irrepscope.sph.api import spherical_harmonics as _sh

    return _sh(*args, **kwargs)
