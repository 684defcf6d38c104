"""Allegro models (nequip-allegro 0.8, ``pip install 'irrepscope[allegro]'``) through the
generic analysis.

Allegro keeps its equivariant features on edges, not atoms: layer ``<module>.tps.<i>`` is the
output of the i-th tensor product of the Allegro module, one row per directed edge (i -> j within
r_max) in Allegro's strided layout [edges, tensor channels, sum(2l+1)], converted to e3nn's flat
layout (``adapters.layout``). Each edge counts for the molecule of its centre atom i; a
molecule's feature vector is the sum over all its directed edges (``pooling="mean"`` averages).
The last tensor product outputs scalars only (shown, not used for the model columns). Batches,
atom types and the forward pass are nequip's (``adapters.nequip``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from e3nn import o3

from irrepscope.analysis.adapters.hooks import HookPoint, ModelAdapter
from irrepscope.analysis.adapters.layout import flat_irreps, flat_to_strided, strided_to_flat
from irrepscope.analysis.adapters.nequip import NequIPAdapter
from irrepscope.errors import ConfigError


def _tensor_product_point(name: str, module: torch.nn.Module, mul: int) -> HookPoint:
    strided = o3.Irreps(module.irreps_out)
    return HookPoint(name, module, flat_irreps(strided, mul),
                     read=lambda output: strided_to_flat(output, strided),
                     write=lambda output, new: flat_to_strided(new, strided, mul),
                     rows="edges")


class AllegroAdapter(NequIPAdapter):
    """A loaded Allegro model: its tensor products' edge features (see the module docstring)."""

    family = "allegro"

    def hook_points(self) -> list[HookPoint]:
        """``<Allegro module>.tps.<i>`` for every layer, input side first."""
        modules = [(name, m) for name, m in self.model.named_modules()
                   if type(m).__name__ == "Allegro_Module"]
        if len(modules) != 1:
            raise ConfigError(f"{self.source}: expected one Allegro_Module in the model, found "
                              f"{len(modules)}; is it an Allegro model?")
        name, allegro = modules[0]
        return [_tensor_product_point(f"{name}.tps.{i}", tp, int(allegro.num_tensor_features))
                for i, tp in enumerate(allegro.tps)]

    def points(self, layers: Sequence[str] | None = None) -> list[HookPoint]:
        """The tensor products named ``layers`` (default: all)."""
        return ModelAdapter.points(self, layers)
