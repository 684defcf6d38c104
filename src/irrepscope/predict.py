"""Predictions of a trained run on the user's molecules: energies (eV), forces (eV/Å), per-atom
energies (eV), in batches.

The run's own graph kind and cutoff (``config.data``) build each molecule's graph, and molecules
are validated like training data (``irrepscope.data.process``) plus one check training does not
need: every element must occur in the run's training split.

Forces are -dE/dpos by autograd, through the spherical harmonics' closed-form backward. On a bond
graph the bonds are perceived once per structure from its geometry (``graphs.bond_edges``) and
held fixed while differentiating: the forces are exact derivatives of the energy on that graph,
but the energy jumps when a stretching bond crosses the perception threshold (rcov_i + rcov_j +
0.45 Å), so dynamics of a bond-graph run conserve energy only while no bond forms or breaks.
Radius-graph runs have no such jump inside the cutoff; use them for dynamics.

Per-atom energies: each atom's readout passed through the energy head on its own, with the
head's constant (bias, label mean) shared equally by the molecule's atoms, so that they sum to
the molecule's energy.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Batch, Data

from irrepscope.data.graphs import bond_edges, radius_edges
from irrepscope.data.molecules import Problem, RawMolecules, check_problems
from irrepscope.data.process import process
from irrepscope.errors import DataError, RunDirError
from irrepscope.files import atomic_output

PROGRESS_MIN_BATCHES = 20  # a progress bar only when a file needs at least this many batches


@dataclass
class Frames:
    """Molecules read from a file: flat arrays (``raw``, y = the file's energy or NaN) and the
    ``ase.Atoms`` they came from (kept for writing them back with predictions)."""

    raw: RawMolecules
    atoms: list[Any]


@dataclass
class Prediction:
    """Per kept frame: ``frame`` int [M] (position in the input), ``energy`` float64 [M] eV,
    ``reference`` float64 [M] eV (the input's energy, NaN when absent), ``counts`` int [M];
    per atom (molecule m owns rows ptr[m]:ptr[m+1]): ``z`` [A], ``forces`` float64 [A, 3] eV/Å
    and ``atom_energies`` float64 [A] eV when asked for. ``skipped``: frames left out."""

    frame: np.ndarray
    energy: np.ndarray
    reference: np.ndarray
    counts: np.ndarray
    z: np.ndarray
    forces: np.ndarray | None = None
    atom_energies: np.ndarray | None = None
    skipped: list[Problem] = field(default_factory=list)

    @property
    def ptr(self) -> np.ndarray:
        """int64 [M + 1] offset of each frame's first atom."""
        return np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)


def read_frames(path: str | Path, energy_key: str = "energy") -> Frames:
    """Every frame of an extended-XYZ file (ASE); energies are optional (NaN when absent)."""
    from irrepscope.data.xyz import frame_energy, read_atoms

    atoms = read_atoms(path)
    energies = [frame_energy(a, energy_key) for a in atoms]
    return Frames(raw_from_atoms(atoms, [np.nan if e is None else e for e in energies]), atoms)


def raw_from_atoms(atoms: Sequence[Any], energies: Sequence[float] | None = None
                   ) -> RawMolecules:
    """Flat arrays of ``ase.Atoms`` objects (positions in float64 Å; y NaN unless given)."""
    counts = [len(a) for a in atoms]
    z = np.concatenate([a.get_atomic_numbers() for a in atoms]) if atoms else np.zeros(0)
    pos = np.concatenate([a.get_positions() for a in atoms]) if atoms else np.zeros((0, 3))
    y = np.full(len(atoms), np.nan) if energies is None else np.asarray(energies, np.float64)
    return RawMolecules(z, pos, counts, y, np.arange(len(atoms)), [""] * len(atoms))


def training_elements(run_dir: str | Path) -> set[int] | None:
    """Atomic numbers in the run's training split, or None (with a note) if its data is gone.

    Read from the run's baseline.json; runs written before it recorded them load their data.
    """
    from irrepscope.train.baseline import read_baseline
    from irrepscope.train.run import load_run_dataset, load_run_split

    recorded = (read_baseline(Path(run_dir)) or {}).get("training_elements")
    if recorded is not None:
        return {int(z) for z in recorded}
    try:
        dataset = load_run_dataset(run_dir, progress=False)
        split = load_run_split(run_dir)
    except (DataError, RunDirError) as err:
        print(f"irrepscope: cannot read the training data of {run_dir} ({err}); elements are "
              f"checked against the model's embedding table only", file=sys.stderr)
        return None
    return {int(z) for z in dataset.elements(np.asarray(split.train, dtype=np.int64))}


class Predictor:
    """A trained model with the graph settings of its run: ``predict(raw)`` -> ``Prediction``.

    ``graph``: "bonds" or "radius"; ``cutoff`` in Å (radius graphs); ``elements``: atomic
    numbers the model was trained on (None: any number its embedding table has).
    """

    def __init__(self, model: torch.nn.Module, graph: str = "bonds", cutoff: float = 6.0,
                 elements: set[int] | None = None) -> None:
        if graph not in ("bonds", "radius"):
            raise DataError(f"unknown graph kind {graph!r}; use 'bonds' or 'radius'")
        self.model = model.eval()
        self.graph, self.cutoff = graph, float(cutoff)
        num = int(model.config.num_elements)
        self.elements = set(range(1, num)) if elements is None else set(elements)
        self.dtype = next(model.parameters()).dtype

    @classmethod
    def from_run(cls, run_dir: str | Path, checkpoint: str | Path = "best") -> Predictor:
        """The model of ``run_dir`` (checkpoint "best", "last" or a path) with its graph kind."""
        from irrepscope.train.run import load_trained_model

        model, config = load_trained_model(run_dir, checkpoint)
        return cls(model, config.data.graph, config.data.cutoff, training_elements(run_dir))

    def problems(self, raw: RawMolecules) -> list[Problem]:
        """Why molecules of ``raw`` cannot be predicted (index = frame), sorted by frame."""
        out = list(raw.problems)
        ptr = raw.ptr
        allowed = sorted(self.elements)
        for m in range(len(raw)):
            unknown = sorted(set(raw.z[ptr[m]:ptr[m + 1]].tolist()) - self.elements)
            if raw.counts[m] == 0:
                out.append(Problem(int(raw.idx[m]), "has no atoms"))
            elif unknown:
                out.append(Problem(int(raw.idx[m]), f"contains element(s) Z={unknown} the model "
                                   f"was not trained on (it knows Z={allowed})"))
        bad = {p.index for p in out}
        rest = raw.select(~np.isin(raw.idx, list(bad))) if bad else raw
        if len(rest):
            # validation as for training data: y only needs to be finite here
            probe = RawMolecules(rest.z, rest.pos, rest.counts, np.zeros(len(rest)), rest.idx,
                                 rest.smiles)
            meta = process(probe, self.cutoff, progress=False)["meta"]
            out += [Problem(**p) for p in meta["problems"]]
            out += [Problem(**p) for p in meta["graph_problems"] if p["graph"] == self.graph]
        return sorted(out, key=lambda p: p.index)

    def graph_of(self, z: np.ndarray, pos: np.ndarray) -> Data:
        """PyG ``Data`` of one molecule (z [N], pos [N, 3] Å) with this run's graph kind."""
        pos_t = torch.as_tensor(np.asarray(pos), dtype=self.dtype)
        z_t = torch.as_tensor(np.asarray(z), dtype=torch.long)
        if self.graph == "bonds":
            edges = bond_edges(np.asarray(z), np.asarray(pos, dtype=np.float64))
        else:
            edges = radius_edges(torch.as_tensor(np.asarray(pos, dtype=np.float64)), self.cutoff)
        return Data(z=z_t, pos=pos_t, edge_index=edges)

    def _batch(self, batch: Batch, forces: bool, atom_energies: bool
               ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(energies [B], forces [N, 3] or None, per-atom energies [N] or None) of one batch."""
        pos = batch.pos.detach().requires_grad_(forces)
        batch.pos = pos
        with torch.set_grad_enabled(forces):
            if atom_energies:
                out = self.model.embed(batch)
                energy = out.energy
                per_atom = self._atom_energies(out.node_features[-1], batch, energy)
            else:
                energy, per_atom = self.model(batch), None
            force = -torch.autograd.grad(energy.sum(), pos)[0] if forces else None
        return energy.detach(), force, None if per_atom is None else per_atom.detach()

    def _atom_energies(self, x: torch.Tensor, batch: Batch, energy: torch.Tensor
                       ) -> torch.Tensor:
        """[N] eV: each atom through the head (and its element's reference) alone, the head's
        constant shared per molecule."""
        n = x.shape[0]
        alone = self.model._energy(x, batch.z, torch.arange(n, device=x.device), n,
                                   normalized=False)
        counts = torch.bincount(batch.batch, minlength=len(energy)).to(alone.dtype)
        excess = torch.zeros_like(energy).index_add(0, batch.batch, alone) - energy
        return alone - (excess / counts)[batch.batch]

    def predict(self, raw: RawMolecules, forces: bool = False, atom_energies: bool = False,
                batch_size: int = 64, skip_invalid: bool = False, progress: bool = True,
                source: str = "input") -> Prediction:
        """Predict every valid molecule of ``raw``; invalid ones raise one ``DataError`` naming
        the first (frame and problem) or, with ``skip_invalid``, are left out and counted."""
        from tqdm.auto import tqdm

        problems = self.problems(raw)
        check_problems(problems, skip_invalid, source, flag="--skip-invalid", item="frame")
        bad = {p.index for p in problems}
        keep = ~np.isin(raw.idx, list(bad))
        kept = raw.select(keep) if bad else raw
        if problems:
            print(f"irrepscope: skipped {len(problems)} invalid frame(s) of {source}, e.g. "
                  f"frame {problems[0].index}: {problems[0].problem}", file=sys.stderr)
        ptr = kept.ptr
        graphs = [self.graph_of(kept.z[ptr[m]:ptr[m + 1]], kept.pos[ptr[m]:ptr[m + 1]])
                  for m in range(len(kept))]
        energies, force_parts, atom_parts = [], [], []
        starts = range(0, len(graphs), batch_size)
        show = progress and len(starts) >= PROGRESS_MIN_BATCHES
        for start in tqdm(starts, desc="predicting", disable=not show, leave=False):
            batch = Batch.from_data_list(graphs[start:start + batch_size])
            energy, force, per_atom = self._batch(batch, forces, atom_energies)
            energies.append(energy.double())
            force_parts.append(force)
            atom_parts.append(per_atom)
        return Prediction(
            frame=kept.idx, energy=_joined(energies) if energies else np.zeros(0),
            reference=kept.y, counts=kept.counts, z=kept.z,
            forces=_joined(force_parts) if forces and graphs else None,
            atom_energies=_joined(atom_parts) if atom_energies and graphs else None,
            skipped=problems)


def _joined(parts: list) -> np.ndarray:
    """float64 numpy array of tensors concatenated along dim 0."""
    return torch.cat(parts).double().numpy()


def _cell(value: Any) -> Any:
    """A CSV cell: integers as they are, floats at full precision (repr)."""
    value = value.item() if hasattr(value, "item") else value
    return repr(float(value)) if isinstance(value, float) else value


def write_csv(prediction: Prediction, path: Path) -> list[Path]:
    """``path``: frame, atoms, energy_eV, reference_energy_eV; with forces or per-atom
    energies also ``<stem>_atoms.csv``: frame, atom, Z, [energy_eV], [fx, fy, fz eV/Å]."""
    import csv

    with atomic_output(path, "w") as handle:
        writer = csv.writer(handle)
        writer.writerow(["frame", "atoms", "energy_eV", "reference_energy_eV"])
        for row in zip(prediction.frame, prediction.counts, prediction.energy,
                       prediction.reference, strict=True):
            writer.writerow([_cell(v) for v in row])
    if prediction.forces is None and prediction.atom_energies is None:
        return [path]
    atoms_path = path.with_name(f"{path.stem}_atoms.csv")
    frame = np.repeat(prediction.frame, prediction.counts)
    local = np.arange(len(prediction.z)) - np.repeat(prediction.ptr[:-1], prediction.counts)
    columns = {"frame": frame, "atom": local, "Z": prediction.z}
    if prediction.atom_energies is not None:
        columns["energy_eV"] = prediction.atom_energies
    if prediction.forces is not None:
        columns.update(fx_eV_per_A=prediction.forces[:, 0], fy_eV_per_A=prediction.forces[:, 1],
                       fz_eV_per_A=prediction.forces[:, 2])
    with atomic_output(atoms_path, "w") as handle:
        writer = csv.writer(handle)
        writer.writerow(list(columns))
        for row in zip(*columns.values(), strict=True):
            writer.writerow([_cell(v) for v in row])
    return [path, atoms_path]


def write_extxyz(prediction: Prediction, atoms: Sequence[Any], path: Path) -> list[Path]:
    """Extended XYZ that ASE reads back: each kept frame with ``energy`` and ``free_energy``,
    and ``forces`` / ``energies`` (per atom) when predicted, as a single-point calculator."""
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    out, ptr = [], prediction.ptr
    for m, frame in enumerate(prediction.frame):
        copy = atoms[int(frame)].copy()
        copy.calc = None
        results: dict[str, Any] = {"energy": float(prediction.energy[m]),
                                   "free_energy": float(prediction.energy[m])}
        if prediction.forces is not None:
            results["forces"] = prediction.forces[ptr[m]:ptr[m + 1]]
        if prediction.atom_energies is not None:
            results["energies"] = prediction.atom_energies[ptr[m]:ptr[m + 1]]
        copy.calc = SinglePointCalculator(copy, **results)
        out.append(copy)
    with atomic_output(path, "w") as handle:
        write(handle, out, format="extxyz")
    return [path]


def predict_file(run_dir: str | Path, xyz: str | Path, out: str | Path,
                 checkpoint: str | Path = "best", forces: bool = False,
                 atom_energies: bool = False, skip_invalid: bool = False,
                 batch_size: int = 64, energy_key: str = "energy",
                 progress: bool = True) -> tuple[list[Path], Prediction]:
    """``irrepscope predict``: predictions for every frame of ``xyz`` written to ``out`` (.csv
    or .xyz/.extxyz); returns (files written, the prediction)."""
    out = Path(out)
    if out.suffix not in (".csv", ".xyz", ".extxyz"):
        raise DataError(f"--out {out}: use a .csv, .xyz or .extxyz file name")
    predictor = Predictor.from_run(run_dir, checkpoint)
    frames = read_frames(xyz, energy_key)
    prediction = predictor.predict(frames.raw, forces=forces, atom_energies=atom_energies,
                                   batch_size=batch_size, skip_invalid=skip_invalid,
                                   progress=progress, source=str(xyz))
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        return write_csv(prediction, out), prediction
    return write_extxyz(prediction, frames.atoms, out), prediction
