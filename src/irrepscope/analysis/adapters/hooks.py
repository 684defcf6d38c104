"""The interface every model family implements (``ModelAdapter``) and what is built once on top
of it: features captured by forward hooks and pooled per molecule (``capture_features``), and the
``ModelProbe`` of ablation and input gradients (``AdapterProbe``).

An adapter names its analysable layers as ``HookPoint``s: the module, the e3nn irreps of the
features it outputs, how to read them from the module's output in e3nn's flat layout [rows, dim]
(rows = atoms, or edges pooled to their centre atom's molecule) and how to put replaced features
back. Hooks are removed, and every process-wide setting is restored, when a pass ends.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from e3nn import o3

from irrepscope.analysis.features import FeatureSet, Layer
from irrepscope.analysis.utilization import attribution_sums
from irrepscope.errors import ConfigError, DataError
from irrepscope.model.irreps import columns_by_l, zero_orders


@dataclass
class HookPoint:
    """One analysable layer: its output's features [rows, irreps.dim] in e3nn's layout."""

    name: str
    module: torch.nn.Module
    irreps: o3.Irreps
    read: Callable[[Any], torch.Tensor]
    write: Callable[[Any, torch.Tensor], Any]
    rows: str = "atoms"  # or "edges"

    @property
    def has_l_above_zero(self) -> bool:
        """Whether any of its irreps has l > 0."""
        return any(ir.l > 0 for _, ir in self.irreps)


@dataclass
class Batch:
    """Model input of ``n`` molecules and the molecule of every atom [A] (and edge centre [E])."""

    inputs: Any
    n: int
    atom_molecule: torch.Tensor
    edge_center: torch.Tensor | None = None

    def molecule_of(self, rows: str) -> torch.Tensor:
        """Molecule index of every row of a layer's features ('atoms' or 'edges')."""
        if rows == "atoms":
            return self.atom_molecule
        return self.atom_molecule[self.edge_center]


class ModelAdapter(ABC):
    """A loaded model of one family: its layers, its batches, its energies (eV)."""

    family: str = ""

    def __init__(self, model: torch.nn.Module, source: str) -> None:
        self.model, self.source = model.eval(), source

    @abstractmethod
    def hook_points(self) -> list[HookPoint]:
        """Every analysable layer, input side first."""

    @abstractmethod
    def element_symbols(self) -> list[str]:
        """Chemical symbols the model knows."""

    @abstractmethod
    def make_batch(self, molecules: Sequence[Any]) -> Batch:
        """One batch of ``ase.Atoms`` (checked by ``check_molecules`` first)."""

    @abstractmethod
    def energies(self, batch: Batch) -> torch.Tensor:
        """Total energies [n] (eV) of a batch, differentiable with respect to hooked features."""

    def forward_context(self) -> contextlib.AbstractContextManager:
        """Process-wide settings the model's forward needs, restored afterwards."""
        return contextlib.nullcontext()

    def default_points(self) -> list[HookPoint]:
        """The layers analysed when none are named (default: every hook point)."""
        return self.hook_points()

    def points(self, layers: Sequence[str] | None = None) -> list[HookPoint]:
        """The hook points named ``layers`` (default: ``default_points``), in the model's order."""
        if layers is None:
            return self.default_points()
        available = self.hook_points()
        by_name = {p.name: p for p in available}
        unknown = [name for name in layers if name not in by_name]
        if unknown:
            raise ConfigError(f"--layers: {', '.join(unknown)} not among the {self.family} "
                              f"model's layers: {', '.join(by_name)}")
        return [p for p in available if p.name in set(layers)]

    def check_molecules(self, molecules: Sequence[Any]) -> None:
        """One ``DataError`` for elements the model does not know (which, in which frames) or
        periodic frames."""
        known = set(self.element_symbols())
        unknown: dict[str, list[int]] = {}
        for i, atoms in enumerate(molecules):
            if atoms.pbc.any():
                raise DataError(f"frame {i} ({atoms.get_chemical_formula()}) is periodic "
                                f"(pbc={atoms.pbc.tolist()}); the {self.family} analysis is "
                                f"for molecules: write frames with pbc=F F F")
            for symbol in set(atoms.get_chemical_symbols()) - known:
                unknown.setdefault(symbol, []).append(i)
        if unknown:
            where = "; ".join(f"{s} in frame(s) {_first(frames)}"
                              for s, frames in sorted(unknown.items()))
            raise DataError(f"the data holds elements the model does not know ({where}); the "
                            f"model knows {', '.join(sorted(known))}")


def _first(frames: list[int], shown: int = 5) -> str:
    text = ", ".join(map(str, frames[:shown]))
    return text + (f" and {len(frames) - shown} more" if len(frames) > shown else "")


@contextlib.contextmanager
def hooked(points: Sequence[HookPoint],
           change: Callable[[int, torch.Tensor, HookPoint], torch.Tensor | None]
           ) -> Iterator[None]:
    """Forward hooks on ``points``: ``change(k, features, point)`` sees layer k's features
    (e3nn layout, checked against its irreps) and may return replacements."""
    handles = []
    for k, point in enumerate(points):
        def hook(module: Any, inputs: Any, output: Any, k: int = k,
                 point: HookPoint = point) -> Any:
            x = point.read(output)
            if x.shape[-1] != point.irreps.dim:
                raise ConfigError(f"layer {point.name!r} outputs {x.shape[-1]} feature columns "
                                  f"but declares irreps {point.irreps} ({point.irreps.dim})")
            new = change(k, x, point)
            return None if new is None else point.write(output, new)

        handles.append(point.module.register_forward_hook(hook))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def batches(adapter: ModelAdapter, molecules: Sequence[Any], batch_size: int
            ) -> Iterator[Batch]:
    """The molecules in batches of ``batch_size``, in order."""
    for start in range(0, len(molecules), batch_size):
        yield adapter.make_batch(molecules[start:start + batch_size])


def capture_features(adapter: ModelAdapter, molecules: Sequence[Any],
                     layers: Sequence[str] | None = None, batch_size: int = 32,
                     pooling: str = "sum", targets: Sequence[float] | None = None,
                     smiles: Sequence[str] | None = None) -> FeatureSet:
    """Each layer's features summed (or averaged, per atom or edge) per molecule, with the
    model's energies [n] (eV) as ``predictions``; ``targets`` / ``smiles`` passed through."""
    adapter.check_molecules(molecules)
    points = adapter.points(layers)
    pooled: list[list[torch.Tensor]] = [[] for _ in points]
    energies = []
    for batch in batches(adapter, molecules, batch_size):
        def keep(k: int, x: torch.Tensor, point: HookPoint, batch: Batch = batch) -> None:
            index = batch.molecule_of(point.rows).to(x.device)
            total = torch.zeros(batch.n, x.shape[-1], dtype=torch.float64, device=x.device)
            total.index_add_(0, index, x.detach().double())
            if pooling == "mean":
                total /= torch.bincount(index, minlength=batch.n).clamp(min=1)[:, None]
            pooled[k].append(total.cpu())

        with hooked(points, keep), adapter.forward_context(), torch.no_grad():
            energies.append(adapter.energies(batch).detach().double().reshape(-1).cpu())
    return FeatureSet(
        [Layer(p.name, torch.cat(parts).numpy(), p.irreps)
         for p, parts in zip(points, pooled, strict=True)],
        targets=None if targets is None else np.asarray(targets, np.float64),
        predictions=torch.cat(energies).numpy(),
        smiles=None if smiles is None else list(smiles), source=adapter.source).validate()


def gradient_layer(points: Sequence[HookPoint]) -> int:
    """Index of the last layer with l > 0 features (the last one if none has any)."""
    with_l = [k for k, p in enumerate(points) if p.has_l_above_zero]
    return with_l[-1] if with_l else len(points) - 1


class AdapterProbe:
    """``ModelProbe`` of an adapted model on molecules with target energies (eV): ablation zeros
    l in every captured layer; input gradients are taken at the output of the last captured
    layer with l > 0 features."""

    def __init__(self, adapter: ModelAdapter, molecules: Sequence[Any],
                 targets: Sequence[float], layers: Sequence[str] | None = None,
                 batch_size: int = 32) -> None:
        adapter.check_molecules(molecules)
        self.adapter, self.molecules, self.batch_size = adapter, list(molecules), batch_size
        self.targets = np.asarray(targets, dtype=np.float64)
        self.points = adapter.points(layers)
        self.notes: list[str] = []

    def _energies(self, orders: Sequence[int] = ()) -> np.ndarray:
        def zero(k: int, x: torch.Tensor, point: HookPoint) -> torch.Tensor | None:
            return zero_orders(x, point.irreps, orders) if orders else None

        out = []
        with hooked(self.points, zero), self.adapter.forward_context(), torch.no_grad():
            for batch in batches(self.adapter, self.molecules, self.batch_size):
                out.append(self.adapter.energies(batch).detach().double().reshape(-1).cpu())
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
        """(layer index, {l: mean per molecule of sum |dE/dx| and |x dE/dx|})."""
        target = gradient_layer(self.points)
        cols = columns_by_l(self.points[target].irreps)
        sums = {l: np.zeros(2) for l in cols}
        for batch in batches(self.adapter, self.molecules, self.batch_size):
            captured: list[torch.Tensor] = []

            def leaf(k: int, x: torch.Tensor, point: HookPoint,
                     captured: list[torch.Tensor] = captured) -> torch.Tensor | None:
                if k != target:
                    return None
                captured.append(x.detach().requires_grad_(True))
                return captured[-1]

            with hooked(self.points, leaf), self.adapter.forward_context(), \
                    torch.enable_grad():
                energy = self.adapter.energies(batch)
                (grad,) = torch.autograd.grad(energy.sum(), captured[0], allow_unused=True)
            for l, pair in attribution_sums(captured[0].detach(), grad, cols).items():
                sums[l] += pair
        self.notes.append(f"Input gradients are taken at the output of layer {target} "
                          f"({self.points[target].name}), the last analysed layer with l > 0 "
                          f"features.")
        n = max(len(self.molecules), 1)
        return target, {l: {"grad_abs": s[0] / n, "grad_x_input": s[1] / n}
                        for l, s in sums.items()}
