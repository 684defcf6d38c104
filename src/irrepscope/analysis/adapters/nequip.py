"""NequIP models (nequip >= 0.19, ``pip install irrepscope[nequip]``) through the generic
analysis: forward hooks capture each layer's node features with the irreps the layer declares
(``module.irreps_out["node_features"]``), pooled per molecule into a ``FeatureSet``;
``NequIPProbe`` supplies ablation and input gradients. Both are the generic code of
``adapters.hooks`` on a ``NequIPAdapter``; ``load_nequip_file`` reads checkpoints and packages.

``capture_features`` / ``NequIPProbe`` default to nequip's ``ConvNetLayer`` modules, except a
trailing one whose output is scalars only (the readout's input: it carries no l > 0 features
to analyse); ``NequIPAdapter`` (what ``irrepscope analyze --model`` uses) keeps it, shown. Name
modules explicitly (``layers=[...]``, names as in ``model.named_modules()``) to choose others.
Molecules are ``ase.Atoms`` (no periodic boundaries); the neighbour list uses the model's
``r_max`` and atom types map chemical symbols to ``model.type_names``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from e3nn import o3

from irrepscope.analysis.adapters import hooks
from irrepscope.analysis.adapters.hooks import AdapterProbe, Batch, HookPoint, ModelAdapter
from irrepscope.analysis.features import FeatureSet
from irrepscope.errors import ConfigError, DataError
from irrepscope.model.dtype import default_dtype

NODE_FEATURES = "node_features"
TOTAL_ENERGY = "total_energy"


def _require_nequip() -> None:
    try:
        import nequip  # noqa: F401
    except ImportError as err:
        raise ConfigError("the NequIP adapter needs nequip: pip install 'irrepscope[nequip]'"
                          ) from err


_ENV_SET_BY_NEQUIP = ("PL_GLOBAL_SEED", "PL_SEED_WORKERS", "PYTORCH_JIT_USE_NNC_NOT_NVFUSER")


@contextlib.contextmanager
def nequip_global_state() -> Iterator[None]:
    """nequip's ``set_global_state()`` (required before building its models) inside the block;
    afterwards the process-wide settings it changes are restored: torch's default dtype (it sets
    float64), the torch / numpy / random RNG states (it seeds 123), e3nn's optimisation
    defaults, the dynamo flags, the tensor sharing strategy and the environment variables.
    Run the model inside ``nequip_forward`` (float64 default dtype again)."""
    import os
    import random

    import e3nn
    import torch.multiprocessing as mp
    from torch._dynamo import config as dynamo

    _require_nequip()
    from nequip.utils.global_state import set_global_state

    saved = (torch.get_default_dtype(), torch.random.get_rng_state(), np.random.get_state(),
             random.getstate(), e3nn.get_optimization_defaults(), mp.get_sharing_strategy(),
             dynamo.capture_dynamic_output_shape_ops, dynamo.capture_scalar_outputs,
             {k: os.environ.get(k) for k in _ENV_SET_BY_NEQUIP})
    set_global_state()
    try:
        yield
    finally:
        torch.set_default_dtype(saved[0])
        torch.random.set_rng_state(saved[1])
        np.random.set_state(saved[2])
        random.setstate(saved[3])
        e3nn.set_optimization_defaults(**saved[4])
        mp.set_sharing_strategy(saved[5])
        dynamo.capture_dynamic_output_shape_ops, dynamo.capture_scalar_outputs = saved[6:8]
        for key, value in saved[8].items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def layer_irreps(model: torch.nn.Module, name: str) -> o3.Irreps:
    """Irreps of the node features module ``name`` outputs; ``ConfigError`` if it declares none."""
    modules = dict(model.named_modules())
    if name not in modules:
        raise ConfigError(f"the model has no module {name!r}; node-feature layers: "
                          f"{', '.join(default_layers(model, keep_scalar_last=True))}")
    declared = getattr(modules[name], "irreps_out", None)
    if not isinstance(declared, dict) or declared.get(NODE_FEATURES) is None:
        raise ConfigError(f"module {name!r} ({type(modules[name]).__name__}) declares no "
                          f"irreps for its node features (irreps_out has no "
                          f"{NODE_FEATURES!r}), so its columns cannot be split per l; hook one "
                          f"of: {', '.join(default_layers(model, keep_scalar_last=True))}")
    return o3.Irreps(declared[NODE_FEATURES])


def default_layers(model: torch.nn.Module, keep_scalar_last: bool = False) -> list[str]:
    """Names of the model's ``ConvNetLayer`` modules, in order (see the module docstring)."""
    names = [name for name, module in model.named_modules()
             if type(module).__name__ == "ConvNetLayer"]
    if names and not keep_scalar_last:
        last = o3.Irreps(dict(model.named_modules())[names[-1]].irreps_out[NODE_FEATURES])
        if all(ir.l == 0 for _, ir in last):
            names = names[:-1]
    return names


def to_nequip_batch(model: torch.nn.Module, molecules: Sequence[Any],
                    first_index: int = 0) -> dict[str, torch.Tensor]:
    """One nequip ``AtomicDataDict`` batch of ``ase.Atoms`` (neighbours within r_max)."""
    from nequip.data import AtomicDataDict
    from nequip.data.ase import from_ase
    from nequip.data.transforms import ChemicalSpeciesToAtomTypeMapper, NeighborListTransform

    types = list(model.type_names)
    mapper = ChemicalSpeciesToAtomTypeMapper(types)
    neighbours = NeighborListTransform(r_max=float(model.metadata["r_max"]))
    frames = []
    for offset, atoms in enumerate(molecules):
        unknown = sorted(set(atoms.get_chemical_symbols()) - set(types))
        if unknown:
            raise DataError(f"molecule {first_index + offset} ({atoms.get_chemical_formula()}) "
                            f"contains {unknown}, not among the model's types {types}")
        if atoms.pbc.any():
            raise DataError(f"molecule {first_index + offset}: periodic boundaries are not "
                            f"supported (set atoms.pbc = False)")
        with default_dtype(torch.float64):  # from_ase converts to the default dtype
            frames.append(neighbours(mapper(from_ase(atoms))))
    batch = AtomicDataDict.batched_from_list(frames)
    dtype = model.model_dtype
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in batch.items()}


@contextlib.contextmanager
def nequip_forward(model: torch.nn.Module) -> Iterator[None]:
    """What nequip's forward expects and the analysis needs, inside the block: torch's default
    dtype float64 (nequip's global dtype; it creates run-time tensors in it) and its
    force/stress autograd switched off (it would free the graph the input gradients need)."""
    outputs = [m for m in model.modules() if isinstance(getattr(m, "do_derivatives", None), bool)]
    before = [m.do_derivatives for m in outputs]
    for m in outputs:
        m.do_derivatives = False
    try:
        with default_dtype(torch.float64):
            yield
    finally:
        for m, value in zip(outputs, before, strict=True):
            m.do_derivatives = value


def node_feature_point(model: torch.nn.Module, name: str) -> HookPoint:
    """The hook point of module ``name``'s node features (irreps from its ``irreps_out``)."""
    irreps = layer_irreps(model, name)  # ConfigError for unknown or undeclared modules
    return HookPoint(name, dict(model.named_modules())[name], irreps,
                     read=lambda output: output[NODE_FEATURES],
                     write=lambda output, new: {**output, NODE_FEATURES: new})


class NequIPAdapter(ModelAdapter):
    """A nequip model: layers are its ``ConvNetLayer`` modules (node features, per atom), or
    any named module that declares node-feature irreps."""

    family = "nequip"

    def hook_points(self) -> list[HookPoint]:
        """Every ConvNetLayer, the scalars-only last one included."""
        return [node_feature_point(self.model, name)
                for name in default_layers(self.model, keep_scalar_last=True)]

    def points(self, layers: Sequence[str] | None = None) -> list[HookPoint]:
        """The ConvNetLayers, or the named modules (any that declares node-feature irreps)."""
        if layers is None:
            return self.hook_points()
        return [node_feature_point(self.model, name) for name in layers]

    def element_symbols(self) -> list[str]:
        """The model's type names (chemical symbols)."""
        return list(self.model.type_names)

    def make_batch(self, molecules: Sequence[Any]) -> Batch:
        """One nequip batch (neighbours within the model's r_max)."""
        inputs = to_nequip_batch(self.model, molecules)
        return Batch(inputs, len(molecules), inputs["batch"], inputs["edge_index"][0])

    def energies(self, batch: Batch) -> torch.Tensor:
        """nequip's total energies [n] (eV)."""
        return self.model(batch.inputs)[TOTAL_ENERGY].reshape(-1)

    def forward_context(self) -> contextlib.AbstractContextManager:
        """float64 default dtype and no force autograd, restored afterwards."""
        return nequip_forward(self.model)


def capture_features(model: torch.nn.Module, molecules: Sequence[Any],
                     layers: Sequence[str] | None = None, batch_size: int = 32,
                     pooling: str = "sum", targets: Sequence[float] | None = None,
                     smiles: Sequence[str] | None = None, source: str = "nequip model"
                     ) -> FeatureSet:
    """Each layer's node features summed (or averaged) per molecule, with the model's energies
    [n] as ``predictions``; ``targets`` / ``smiles`` are passed through. Layers default to the
    ConvNetLayers without a scalars-only last one (the module docstring)."""
    _require_nequip()
    layers = list(layers) if layers is not None else default_layers(model)
    if not layers:
        raise ConfigError("no layers to capture: the model has no ConvNetLayer with l > 0 "
                          "outputs; name modules with layers=[...]")
    return hooks.capture_features(NequIPAdapter(model, source), molecules, layers, batch_size,
                                  pooling, targets, smiles)


class NequIPProbe(AdapterProbe):
    """``ModelProbe`` of a nequip model on molecules with target energies (eV): ablation zeros
    l in every captured layer; input gradients are taken at the last captured layer with l > 0
    features. Layers default as in ``capture_features``."""

    def __init__(self, model: torch.nn.Module, molecules: Sequence[Any],
                 targets: Sequence[float], layers: Sequence[str] | None = None,
                 batch_size: int = 32) -> None:
        layers = list(layers) if layers is not None else default_layers(model)
        super().__init__(NequIPAdapter(model, "nequip model"), molecules, targets, layers,
                         batch_size)


def load_nequip_file(path: str | Path) -> torch.nn.Module:
    """The model of a nequip checkpoint (``.ckpt``) or package (``.nequip.zip``), loaded by
    nequip's own ``load_saved_model`` (a full unpickle: only for files the user trusts), eager,
    in float64 default dtype as nequip expects; process-wide settings are restored after."""
    _require_nequip()
    import warnings

    from nequip.model.saved_models.load_utils import load_saved_model

    with nequip_global_state(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(TypedStorage|weights_only).*")
        model = load_saved_model(str(path), compile_mode="eager")
    return model.eval()
