"""NequIP models (nequip >= 0.19, ``pip install irrepscope[nequip]``) through the generic
analysis: forward hooks capture each layer's node features with the irreps the layer declares
(``module.irreps_out["node_features"]``), pooled per molecule into a ``FeatureSet``;
``NequIPProbe`` supplies ablation and input gradients.

Layers default to nequip's ``ConvNetLayer`` modules, except a trailing one whose output is
scalars only (the readout's input: it carries no l > 0 features to analyse); name modules
explicitly (``layers=[...]``, names as in ``model.named_modules()``) to choose others.
Molecules are ``ase.Atoms`` (no periodic boundaries); the neighbour list uses the model's
``r_max`` and atom types map chemical symbols to ``model.type_names``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from e3nn import o3

from irrepscope.analysis.features import FeatureSet, Layer
from irrepscope.analysis.utilization import attribution_sums
from irrepscope.errors import ConfigError, DataError
from irrepscope.model.dtype import default_dtype
from irrepscope.model.irreps import columns_by_l, zero_orders

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
def hooked(model: torch.nn.Module, layers: Sequence[str],
           change: Callable[[int, torch.Tensor, o3.Irreps], torch.Tensor | None]
           ) -> Iterator[None]:
    """Forward hooks on ``layers``: ``change(k, node features, irreps)`` sees layer k's output
    and may return replacement features; dimensions are checked against the irreps."""
    modules = dict(model.named_modules())
    handles = []
    for k, name in enumerate(layers):
        irreps = layer_irreps(model, name)

        def hook(module: Any, inputs: Any, output: Any, k: int = k, name: str = name,
                 irreps: o3.Irreps = irreps) -> Any:
            x = output[NODE_FEATURES]
            if x.shape[-1] != irreps.dim:
                raise ConfigError(f"module {name!r} outputs {x.shape[-1]} node-feature columns "
                                  f"but declares irreps {irreps} ({irreps.dim} columns)")
            new = change(k, x, irreps)
            if new is None:
                return None
            return {**output, NODE_FEATURES: new}

        handles.append(modules[name].register_forward_hook(hook))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


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


def _batches(molecules: Sequence[Any], batch_size: int) -> Iterator[tuple[int, Sequence[Any]]]:
    for start in range(0, len(molecules), batch_size):
        yield start, molecules[start:start + batch_size]


def capture_features(model: torch.nn.Module, molecules: Sequence[Any],
                     layers: Sequence[str] | None = None, batch_size: int = 32,
                     pooling: str = "sum", targets: Sequence[float] | None = None,
                     smiles: Sequence[str] | None = None, source: str = "nequip model"
                     ) -> FeatureSet:
    """Each layer's node features summed (or averaged) per molecule, with the model's energies
    [n] as ``predictions``; ``targets`` / ``smiles`` are passed through."""
    _require_nequip()
    layers = list(layers) if layers is not None else default_layers(model)
    if not layers:
        raise ConfigError("no layers to capture: the model has no ConvNetLayer with l > 0 "
                          "outputs; name modules with layers=[...]")
    irreps = [layer_irreps(model, name) for name in layers]
    pooled: list[list[torch.Tensor]] = [[] for _ in layers]
    energies = []
    model.eval()
    for start, chunk in _batches(molecules, batch_size):
        batch = to_nequip_batch(model, chunk, start)
        n = len(chunk)

        def keep(k: int, x: torch.Tensor, _: o3.Irreps, batch: dict = batch, n: int = n
                 ) -> None:
            total = torch.zeros(n, x.shape[-1], dtype=x.dtype).index_add(0, batch["batch"],
                                                                         x.detach())
            if pooling == "mean":
                total = total / batch["num_atoms"].to(x.dtype)[:, None]
            pooled[k].append(total.double())

        with hooked(model, layers, keep), nequip_forward(model), torch.no_grad():
            out = model(batch)
        energies.append(out[TOTAL_ENERGY].detach().reshape(-1).double())
    return FeatureSet(
        [Layer(name, torch.cat(parts).numpy(), ir)
         for name, parts, ir in zip(layers, pooled, irreps, strict=True)],
        targets=None if targets is None else np.asarray(targets, np.float64),
        predictions=torch.cat(energies).numpy(),
        smiles=None if smiles is None else list(smiles), source=source).validate()


class NequIPProbe:
    """``ModelProbe`` of a nequip model on molecules with target energies (eV): ablation zeros
    l in every captured layer; input gradients are taken at the last captured layer."""

    def __init__(self, model: torch.nn.Module, molecules: Sequence[Any],
                 targets: Sequence[float], layers: Sequence[str] | None = None,
                 batch_size: int = 32) -> None:
        self.model, self.molecules, self.batch_size = model.eval(), list(molecules), batch_size
        self.targets = np.asarray(targets, dtype=np.float64)
        self.layers = list(layers) if layers is not None else default_layers(model)
        self.notes: list[str] = []

    def _energies(self, orders: Sequence[int] = ()) -> np.ndarray:
        def zero(k: int, x: torch.Tensor, irreps: o3.Irreps) -> torch.Tensor | None:
            return zero_orders(x, irreps, orders) if orders else None

        out = []
        with hooked(self.model, self.layers, zero), nequip_forward(self.model), torch.no_grad():
            for start, chunk in _batches(self.molecules, self.batch_size):
                batch = to_nequip_batch(self.model, chunk, start)
                out.append(self.model(batch)[TOTAL_ENERGY].detach().reshape(-1).double())
        return torch.cat(out).numpy()

    def ablation(self, orders: list[int], progress: bool = False
                 ) -> tuple[float, dict[int, float]]:
        """(MSE in eV^2, {l: relative MSE change with l zeroed in every captured layer})."""
        base = float(np.mean((self._energies() - self.targets) ** 2))
        out = {}
        for l in orders:
            mse = float(np.mean((self._energies([l]) - self.targets) ** 2))
            out[l] = (mse - base) / base if base > 0 else float("nan")
        return base, out

    def input_gradients(self, progress: bool = False
                        ) -> tuple[int, dict[int, dict[str, float]]]:
        """(last captured layer, {l: mean per molecule of sum |dE/dx| and |x dE/dx|})."""
        target = len(self.layers) - 1
        cols = columns_by_l(layer_irreps(self.model, self.layers[target]))
        sums = {l: np.zeros(2) for l in cols}
        for start, chunk in _batches(self.molecules, self.batch_size):
            captured: list[torch.Tensor] = []

            def leaf(k: int, x: torch.Tensor, _: o3.Irreps,
                     captured: list[torch.Tensor] = captured) -> torch.Tensor | None:
                if k != target:
                    return None
                captured.append(x.detach().requires_grad_(True))
                return captured[-1]

            with hooked(self.model, self.layers, leaf), nequip_forward(self.model), \
                    torch.enable_grad():
                energy = self.model(to_nequip_batch(self.model, chunk, start))[TOTAL_ENERGY]
                (grad,) = torch.autograd.grad(energy.sum(), captured[0], allow_unused=True)
            for l, pair in attribution_sums(captured[0].detach(), grad, cols).items():
                sums[l] += pair
        self.notes.append(f"Input gradients are taken at the output of layer {target} "
                          f"({self.layers[target]}).")
        n = max(len(self.molecules), 1)
        return target, {l: {"grad_abs": s[0] / n, "grad_x_input": s[1] / n}
                        for l, s in sums.items()}
