"""MACE models (mace-torch 0.3.16, ``pip install 'irrepscope[mace]'``; it pins e3nn 0.4.4, so
this runs in its own environment) through the generic analysis.

Layers: ``products.<i>``, the node features after interaction i's symmetric product (e3nn's flat
layout, irreps of ``products[i].linear.irreps_out``; the last one is scalars only, the readout's
input), analysed by default; ``interactions.<i>``, the messages before the product, on request.
MACE lays the messages out as [atoms, channels, sum(2l+1)] (every channel holds one vector of
each l); they are converted to e3nn's layout (``adapters.layout``) before anything else sees them.
Molecules go through MACE's own data conversion (``mace.data.AtomicData.from_config``) with the
model's cutoff, elements and heads; energies are MACE's ``energy`` output (eV).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from e3nn import o3

from irrepscope.analysis.adapters.hooks import Batch, HookPoint, ModelAdapter
from irrepscope.analysis.adapters.layout import flat_to_strided, strided_to_flat
from irrepscope.errors import ConfigError, DataError
from irrepscope.model.dtype import default_dtype

# `import mace` sets this for the whole process (every later torch.load without an explicit
# weights_only becomes a full unpickle); the adapter restores it after each use of mace.
_ENV_SET_BY_MACE = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"


@contextlib.contextmanager
def mace_environment() -> Iterator[None]:
    """Inside the block, mace may be imported and used; the environment variable it sets on
    import is restored afterwards."""
    saved = os.environ.get(_ENV_SET_BY_MACE)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(_ENV_SET_BY_MACE, None)
        else:
            os.environ[_ENV_SET_BY_MACE] = saved


def load_mace_file(path: str | Path) -> torch.nn.Module:
    """The model of a MACE ``.model`` file (``torch.save`` of the whole module: loading it runs
    code from the file, so callers ask the user first), on the CPU, in eval mode."""
    with mace_environment():
        import mace  # noqa: F401  (the classes the pickle names)

        model = torch.load(path, map_location="cpu", weights_only=False)
    if not (isinstance(model, torch.nn.Module) and hasattr(model, "products")
            and hasattr(model, "interactions")):
        raise DataError(f"{path} holds a {type(model).__name__}, not a MACE model (no "
                        f"interactions / products)")
    return model.eval()


def _interaction_point(name: str, module: torch.nn.Module) -> HookPoint:
    flat = o3.Irreps(module.irreps_out)
    muls = {mul for mul, _ in flat}
    if len(muls) != 1:
        raise ConfigError(f"{name}: messages {flat} have unequal channel counts; MACE's strided "
                          f"layout needs one")
    mul = muls.pop()
    strided = o3.Irreps([(1, ir) for _, ir in flat])
    return HookPoint(name, module, flat,
                     read=lambda output: strided_to_flat(output[0], strided),
                     write=lambda output, new: (flat_to_strided(new, strided, mul), *output[1:]))


class MACEAdapter(ModelAdapter):
    """A loaded MACE model (see the module docstring)."""

    family = "mace"

    def hook_points(self) -> list[HookPoint]:
        """interactions.0, products.0, interactions.1, ... (forward order)."""
        points = []
        for i, (interaction, product) in enumerate(zip(self.model.interactions,
                                                       self.model.products, strict=True)):
            points.append(_interaction_point(f"interactions.{i}", interaction))
            points.append(HookPoint(f"products.{i}", product,
                                    o3.Irreps(product.linear.irreps_out),
                                    read=lambda output: output,
                                    write=lambda output, new: new))
        return points

    def default_points(self) -> list[HookPoint]:
        """Every ``products.<i>`` (node features after each interaction)."""
        return [p for p in self.hook_points() if p.name.startswith("products.")]

    def element_symbols(self) -> list[str]:
        """Symbols of the model's atomic numbers."""
        from ase.data import chemical_symbols

        return [chemical_symbols[int(z)] for z in self.model.atomic_numbers]

    def _dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def make_batch(self, molecules: Sequence[Any]) -> Batch:
        """MACE's graphs of the molecules (cutoff r_max), collated by MACE's own loader."""
        with mace_environment(), default_dtype(self._dtype()):
            from mace import data as mace_data
            from mace.tools import AtomicNumberTable
            from mace.tools.torch_geometric import DataLoader

            table = AtomicNumberTable([int(z) for z in self.model.atomic_numbers])
            heads = list(getattr(self.model, "heads", ["Default"]))
            graphs = [mace_data.AtomicData.from_config(
                mace_data.config_from_atoms(atoms, head_name=heads[0]), z_table=table,
                cutoff=float(self.model.r_max), heads=heads) for atoms in molecules]
            batch = next(iter(DataLoader(graphs, batch_size=len(graphs), shuffle=False)))
        inputs = batch.to_dict()
        return Batch(inputs, len(molecules), inputs["batch"], inputs["edge_index"][0])

    def energies(self, batch: Batch) -> torch.Tensor:
        """MACE's total energies [n] (eV), forces not computed."""
        return self.model(batch.inputs, compute_force=False)["energy"].reshape(-1)

    def forward_context(self) -> contextlib.AbstractContextManager:
        """The model's dtype as default dtype (MACE builds run-time tensors in it)."""
        return default_dtype(self._dtype())
