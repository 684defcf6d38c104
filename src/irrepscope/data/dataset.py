"""``load_dataset``: QM9 or an extended-XYZ file as a sequence of PyG ``Data`` graphs, cached."""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Sequence
from itertools import compress
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from torch_geometric.data import Data

from irrepscope.data import cache
from irrepscope.data.graphs import radius_edges
from irrepscope.data.molecules import Problem, check_problems
from irrepscope.data.process import GRAPH_KINDS, process
from irrepscope.data.targets import check_available, needs_charges
from irrepscope.errors import DataError


class MoleculeGraphs(Dataset):
    """Molecules as PyG ``Data``: z int64 [N], pos float32 [N, 3] Å, edge_index int64 [2, E]
    (row 0 source, row 1 target, both directions), y float32 [1] eV, smiles str, idx int.

    Bond edges are stored; radius edges are computed per item (float64 distances < cutoff).
    Attributes: ``smiles`` list[str], ``idx`` int64 [M] source indices, ``y`` float32 [M] eV,
    ``num_atoms`` and ``num_edges`` int64 [M] (edges of this graph kind), ``graph``, ``cutoff``,
    ``metadata`` (cache metadata: skipped molecules, SMILES disagreements) and ``cache_path``.
    When the source has Mulliken charges (``has_charges``), items also carry ``charges`` float32
    [N] e, ``dipole`` float32 [1, 3] e·Å and ``quadrupole`` float32 [1, 5] e·Å² (e3nn's 1o and 2e
    bases, ``irrepscope.data.targets``); ``dipole``/``quadrupole`` hold every molecule's [M, k].
    """

    def __init__(self, arrays: dict, graph: str, cutoff: float, keep: np.ndarray,
                 cache_path: Path | None = None) -> None:
        self.graph, self.cutoff, self.cache_path = graph, float(cutoff), cache_path
        self.metadata: dict = arrays["meta"]
        atom_ptr, bond_ptr = arrays["atom_ptr"], arrays["bond_ptr"]
        counts, bonds = np.diff(atom_ptr), np.diff(bond_ptr)
        atom_keep, bond_keep = np.repeat(keep, counts), np.repeat(keep, bonds)
        self._z = torch.from_numpy(arrays["z"][atom_keep].astype(np.int64))
        self._pos = torch.from_numpy(np.ascontiguousarray(arrays["pos"][atom_keep]))
        self._bonds = torch.from_numpy(arrays["bond_local"][:, bond_keep].astype(np.int64))
        self.num_atoms = counts[keep].astype(np.int64)
        self._atom_ptr = np.concatenate([[0], np.cumsum(self.num_atoms)]).astype(np.int64)
        self._bond_ptr = np.concatenate([[0], np.cumsum(bonds[keep])]).astype(np.int64)
        self.num_edges = (bonds[keep] if graph == "bonds"
                          else arrays["radius_count"][keep]).astype(np.int64)
        self.y = torch.from_numpy(arrays["y"][keep].astype(np.float32))
        self.idx = arrays["idx"][keep].astype(np.int64)
        self.smiles: list[str] = list(compress(arrays["smiles"], keep))
        self.has_charges = len(arrays["charges"]) > 0 and len(arrays["charges"]) == len(atom_keep)
        if self.has_charges:
            self._charges = torch.from_numpy(arrays["charges"][atom_keep].astype(np.float32))
            self.dipole = torch.from_numpy(arrays["dipole"][keep].astype(np.float32))
            self.quadrupole = torch.from_numpy(arrays["quadrupole"][keep].astype(np.float32))

    @property
    def charges(self) -> torch.Tensor:
        """Mulliken charges (e) of every atom, molecule after molecule: float32 [sum(num_atoms)]."""
        if not self.has_charges:
            raise DataError(f"{self.metadata.get('source', 'this data set')} has no charges")
        return self._charges

    def __len__(self) -> int:
        return len(self.idx)

    @property
    def atomic_numbers(self) -> torch.Tensor:
        """Atomic numbers of every atom, molecule after molecule: int64 [sum(num_atoms)]."""
        return self._z

    def __getitem__(self, i: int) -> Data:
        n = len(self)
        i = int(i)
        if not -n <= i < n:
            raise IndexError(f"molecule {i} out of range for {n} molecules")
        i %= n
        a, b = self._atom_ptr[i], self._atom_ptr[i + 1]
        pos = self._pos[a:b]
        if self.graph == "bonds":
            edge_index = self._bonds[:, self._bond_ptr[i]:self._bond_ptr[i + 1]]
        else:
            edge_index = radius_edges(pos, self.cutoff)
        data = Data(z=self._z[a:b], pos=pos, edge_index=edge_index,
                    y=self.y[i:i + 1], smiles=self.smiles[i], idx=int(self.idx[i]))
        if self.has_charges:
            data.charges = self._charges[a:b]
            data.dipole, data.quadrupole = self.dipole[i:i + 1], self.quadrupole[i:i + 1]
        return data

    def elements(self, positions: np.ndarray) -> np.ndarray:
        """Sorted distinct atomic numbers of the molecules at ``positions`` (int [k])."""
        keep = np.zeros(len(self), dtype=bool)
        keep[np.asarray(positions, dtype=np.int64)] = True
        return np.unique(self._z.numpy()[np.repeat(keep, self.num_atoms)])

    def __repr__(self) -> str:
        return (f"MoleculeGraphs({len(self)} molecules, graph={self.graph!r}, "
                f"cutoff={self.cutoff:g})")


def _source(source: str, xyz: str | Path | None, energy_key: str, qm9_dir) -> tuple:
    """(source files, cache tag, reader, description) of a data source."""
    if source == "qm9" and xyz is None:
        from irrepscope.data.qm9 import qm9_source_files, qm9pack_dir, read_qm9

        files = qm9_source_files(qm9_dir)
        folder = files[0].parent
        tag = "qm9" if folder == qm9pack_dir() else (
            "qm9_" + hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:10])
        return files, tag, lambda progress: read_qm9(qm9_dir, progress), f"QM9 ({folder})"
    if source in ("xyz", "qm9") and xyz is not None:
        from irrepscope.data.xyz import read_xyz

        path = Path(xyz)
        if not path.is_file():
            raise DataError(f"extended-XYZ file {path} does not exist")
        digest = hashlib.sha256(f"{path.resolve()}|{energy_key}".encode()).hexdigest()[:10]
        return ([path], f"xyz_{path.stem}_{digest}",
                lambda progress: read_xyz(path, energy_key), str(path))
    if source == "xyz":
        raise DataError("source 'xyz' needs an extended-XYZ file (xyz=...)")
    raise DataError(f"unknown data source {source!r}; use 'qm9' or 'xyz'")


def _without_cache(path: Path, why: str) -> None:
    print(f"irrepscope: cannot write cache {path} ({why}); continuing without it (point "
          f"data.data_dir or ${cache.DATA_DIR_ENV} at a writable folder)", file=sys.stderr)


def load_dataset(source: str = "qm9", graph: str = "bonds", cutoff: float = 6.0,
                 data_dir: str | Path | None = None, xyz: str | Path | None = None,
                 energy_key: str = "energy", skip_invalid: bool = False,
                 progress: bool = True, qm9_dir: str | Path | None = None,
                 targets: Sequence[str] = ("energy",)) -> MoleculeGraphs:
    """The processed data set, from the cache under ``data_dir`` or processed and cached now.

    ``targets`` (``irrepscope.data.targets.TARGETS``): charge-derived ones need a source with
    charges (``DataError`` otherwise) and make molecules without valid charges invalid.

    ``qm9_dir`` (or $IRREPSCOPE_QM9_DIR) replaces qm9pack's CSV folder. Invalid molecules raise
    one ``DataError`` naming the first, or with ``skip_invalid`` are skipped, counted on stderr
    and listed in ``metadata``.
    """
    if graph not in GRAPH_KINDS:
        raise DataError(f"unknown graph kind {graph!r}; use one of {', '.join(GRAPH_KINDS)}")
    if not cutoff > 0:
        raise DataError(f"cutoff must be a positive number of Å, got {cutoff}")
    files, tag, reader, description = _source(source, xyz, energy_key, qm9_dir)
    folder = cache.default_data_dir(data_dir)
    path = cache.cache_file(folder, tag, cutoff)
    key, described = cache.cache_key(files, {"cutoff": float(cutoff), "energy_key": energy_key},
                                     memo_dir=folder)
    arrays = cache.load(path, key, described)
    if arrays is None:
        problem = cache.write_problem(folder)
        if problem:  # said before processing, which takes a while on QM9
            _without_cache(path, problem)
        start = time.perf_counter()
        processed = process(reader(progress), cutoff, progress)
        processed["meta"]["source"] = description
        processed["meta"]["processing_seconds"] = round(time.perf_counter() - start, 3)
        try:
            if problem:
                path = None
            else:
                cache.save(path, key, described, processed)
        except cache.CacheWriteError as err:
            _without_cache(path, str(err))
            path = None
        arrays = {**processed, "meta": {**processed["meta"], "key": described}}
    meta = arrays["meta"]
    problems = [Problem(**p) for p in meta["problems"]]
    problems += [Problem(**p) for p in meta["graph_problems"] if p["graph"] == graph]
    if needs_charges(targets):
        check_available(targets, bool(meta.get("has_charges")), description)
        problems += [Problem(**p) for p in meta["charge_problems"]]
    check_problems(sorted(problems, key=lambda q: q.index), skip_invalid, description)
    skipped = {p.index for p in problems}
    keep = ~np.isin(arrays["idx"], np.fromiter(skipped, np.int64, len(skipped)))
    if problems:
        print(f"irrepscope: skipped {len(problems)} invalid molecule(s) of {description} "
              f"(listed in the cache metadata), e.g. molecule {problems[0].index}: "
              f"{problems[0].problem}", file=sys.stderr)
    meta["skipped"] = [p.as_dict() for p in problems]
    dataset = MoleculeGraphs(arrays, graph, cutoff, keep, path)
    if len(dataset) == 0:
        raise DataError(f"{description}: no valid molecules are left")
    return dataset
