"""Irrep analysis of any equivariant model's features: per-layer arrays with their e3nn irreps
in, the report of ``irrepscope analyze`` out (projections, utilization table, figures).

Features file (``.npz``, written by ``save_features``, read by ``load_features``)::

    layers             str [K]          layer names, input side first; the last is "last"
    features:<name>    float [n, dim]   one row per molecule (dim = irreps.dim, e3nn layout:
                                        mul consecutive (2l+1)-vectors per entry, m = -l..l)
                       or [A, dim]      one row per atom, when ``molecule`` is given
    irreps:<name>      str              e3nn Irreps of the columns, e.g. "8x0e+8x1o+8x2e"
    molecule           int [A]          optional: each atom's molecule (0..n-1); per-atom
                                        features are then pooled per molecule
    pooling            str              optional: "sum" (default, as irrepscope) or "mean"
    targets            float [n]        optional: the property probed (eV for energies)
    predictions        float [n]        optional: the model's predictions of ``targets``
    smiles             str [n]          optional: SMILES, for NSPS colours and probes

Numbers that need the model itself (ablation, input gradients) come from a
``irrepscope.analysis.analyze.ModelProbe`` when one is given and are "n/a" otherwise.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from e3nn import o3

from irrepscope.analysis.analyze import Analysis, ModelProbe, analyse_embeddings
from irrepscope.analysis.embeddings import RunEmbeddings
from irrepscope.errors import DataError
from irrepscope.files import atomic_output, atomic_write_text, content_problem, short_reason

POOLINGS = ("sum", "mean")
_OPTIONAL = ("molecule", "pooling", "targets", "predictions", "smiles")


@dataclass
class Layer:
    """One layer's per-molecule features [n, irreps.dim] (float64) and their irreps."""

    name: str
    features: np.ndarray
    irreps: o3.Irreps


@dataclass
class FeatureSet:
    """Layers (input side first) of n molecules, with optional targets, predictions, SMILES."""

    layers: list[Layer]
    targets: np.ndarray | None = None
    predictions: np.ndarray | None = None
    smiles: list[str] | None = None
    source: str = "features"
    notes: list[str] = field(default_factory=list)

    @property
    def num_molecules(self) -> int:
        """n, the rows of every layer."""
        return self.layers[0].features.shape[0]

    def validate(self) -> FeatureSet:
        """One ``DataError`` naming the first problem (layer, row, shape); returns ``self``."""
        if not self.layers:
            raise DataError(f"{self.source}: no layers; give at least one")
        names = [layer.name for layer in self.layers]
        if len(set(names)) < len(names):
            raise DataError(f"{self.source}: layer names repeat ({names}); make them unique")
        n = self.num_molecules
        if n == 0:
            raise DataError(f"{self.source}: no molecules (layer {self.layers[0].name!r} has 0 "
                            f"rows); give the features of at least one molecule")
        for layer in self.layers:
            _check_layer(layer, n, self.source)
        for key in ("targets", "predictions"):
            value = getattr(self, key)
            if value is not None and np.asarray(value).shape != (n,):
                raise DataError(f"{self.source}: {key} has shape {np.asarray(value).shape}; "
                                f"expected ({n},), one value per molecule")
        if self.smiles is not None and len(self.smiles) != n:
            raise DataError(f"{self.source}: {len(self.smiles)} SMILES for {n} molecules")
        return self

    def embeddings(self) -> RunEmbeddings:
        """The features as ``RunEmbeddings`` (layer k = block k), what the analysis reads."""
        n = self.num_molecules
        nan = np.full(n, np.nan)
        return RunEmbeddings(
            run_dir=Path(self.source), test_indices=np.arange(n),
            smiles=list(self.smiles) if self.smiles is not None else [""] * n,
            energy_true=nan if self.targets is None else np.asarray(self.targets, np.float64),
            energy_pred=nan if self.predictions is None else np.asarray(self.predictions,
                                                                        np.float64),
            joint={k: layer.features for k, layer in enumerate(self.layers)},
            irreps={k: str(layer.irreps) for k, layer in enumerate(self.layers)})


def _check_layer(layer: Layer, n: int, source: str) -> None:
    where = f"{source}: layer {layer.name!r}"
    x = layer.features
    if x.ndim != 2:
        raise DataError(f"{where}: features have shape {x.shape}; expected [molecules, columns]")
    if x.shape[1] != layer.irreps.dim:
        raise DataError(f"{where}: features have {x.shape[1]} columns but irreps "
                        f"{layer.irreps} need {layer.irreps.dim}; store the irreps of exactly "
                        f"these columns")
    if x.shape[0] != n:
        raise DataError(f"{where}: {x.shape[0]} rows, but the first layer has {n}")
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if bad.size:
        raise DataError(f"{where}: features are NaN or infinite in row {bad[0]} ({bad.size} "
                        f"rows in all)")


def parse_irreps(text: str, where: str) -> o3.Irreps:
    """e3nn ``Irreps`` of ``text``, or one ``DataError`` naming ``where``."""
    try:
        return o3.Irreps(str(text))
    except (ValueError, AssertionError, TypeError) as err:
        raise DataError(f"{where}: irreps {str(text)!r} cannot be parsed by e3nn ({err}); "
                        f"write them like '8x0e+8x1o+8x2e'") from err


def pool(features: np.ndarray, molecule: np.ndarray, num_molecules: int,
         how: str = "sum") -> np.ndarray:
    """Per-molecule [n, dim] of per-atom features [A, dim] (molecule [A] in 0..n-1)."""
    if how not in POOLINGS:
        raise DataError(f"pooling {how!r} is not one of {', '.join(POOLINGS)}")
    x = np.asarray(features, dtype=np.float64)
    out = np.zeros((num_molecules, x.shape[1]))
    np.add.at(out, molecule, x)
    if how == "mean":
        out /= np.bincount(molecule, minlength=num_molecules)[:, None]
    return out


def _molecule_index(data: dict, source: str) -> tuple[np.ndarray, int] | None:
    """(molecule [A], n) from the optional ``molecule`` array, validated."""
    if "molecule" not in data:
        return None
    molecule = np.asarray(data["molecule"])
    if molecule.ndim != 1 or not np.issubdtype(molecule.dtype, np.integer) or (
            molecule.size and molecule.min() < 0):
        raise DataError(f"{source}: 'molecule' must be non-negative integers [atoms], got "
                        f"{molecule.dtype} {molecule.shape}")
    n = int(molecule.max()) + 1 if molecule.size else 0
    empty = np.flatnonzero(np.bincount(molecule, minlength=n) == 0)
    if empty.size:
        raise DataError(f"{source}: molecule {empty[0]} has no atoms in 'molecule' (indices "
                        f"must run 0..n-1 without gaps)")
    return molecule.astype(np.int64), n


def load_features(path: str | Path) -> FeatureSet:
    """The ``FeatureSet`` of a features file (layout in this module's docstring), validated."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"features file {path} does not exist")
    problem = content_problem(path)
    if problem is not None:
        raise DataError(f"{path}: not a features file ({problem}); write it with numpy.savez or "
                        f"irrepscope.analysis.features.save_features (layout in "
                        f"docs/analysis.md)")
    try:
        data = dict(np.load(path, allow_pickle=False))
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        raise DataError(f"{path}: not a readable .npz file, truncated or damaged "
                        f"({short_reason(err)}); write it again") from None
    if "layers" not in data:
        raise DataError(f"{path}: no 'layers' array (the layer names); see the layout in "
                        f"docs/analysis.md")
    names = [str(name) for name in np.atleast_1d(data["layers"])]
    expected = {"layers", *_OPTIONAL, *(f"{kind}:{name}" for name in names
                                        for kind in ("features", "irreps"))}
    unknown = sorted(set(data) - expected)
    if unknown:
        raise DataError(f"{path}: unknown array(s) {', '.join(unknown)}; a layer's arrays are "
                        f"'features:<name>' and 'irreps:<name>' for the names in 'layers'")
    per_atom = _molecule_index(data, str(path))
    how = str(data.get("pooling", "sum"))
    layers = []
    for name in names:
        for kind in ("features", "irreps"):
            if f"{kind}:{name}" not in data:
                raise DataError(f"{path}: layer {name!r} has no '{kind}:{name}' array")
        irreps = parse_irreps(data[f"irreps:{name}"], f"{path}: layer {name!r}")
        x = np.asarray(data[f"features:{name}"], dtype=np.float64)
        if per_atom is not None:
            molecule, n = per_atom
            if x.ndim != 2 or x.shape[0] != len(molecule):
                raise DataError(f"{path}: layer {name!r}: {x.shape[0]} rows, but 'molecule' "
                                f"has {len(molecule)} atoms")
            _check_layer(Layer(name, x, irreps), len(molecule), str(path))
            x = pool(x, molecule, n, how)
        layers.append(Layer(name, x, irreps))
    smiles = [str(s) for s in data["smiles"]] if "smiles" in data else None
    return FeatureSet(layers, data.get("targets"), data.get("predictions"), smiles,
                      str(path)).validate()


def save_features(features: FeatureSet, path: str | Path) -> Path:
    """Write a (validated) per-molecule ``FeatureSet`` as a features file."""
    features.validate()
    arrays: dict[str, np.ndarray] = {"layers": np.asarray([l.name for l in features.layers])}
    for layer in features.layers:
        arrays[f"features:{layer.name}"] = layer.features
        arrays[f"irreps:{layer.name}"] = np.asarray(str(layer.irreps))
    for key in ("targets", "predictions"):
        if getattr(features, key) is not None:
            arrays[key] = np.asarray(getattr(features, key), dtype=np.float64)
    if features.smiles is not None:
        arrays["smiles"] = np.asarray(features.smiles, dtype=str)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as handle:  # a file object: numpy appends no '.npz' to the name
        np.savez_compressed(handle, **arrays)
    return path


def analyse_features(features: FeatureSet | str | Path, out_dir: str | Path,
                     probe: ModelProbe | None = None, seed: int = 0, panel: str | None = None,
                     n_landmark: int = 200, progress: bool = True) -> Analysis:
    """The analysis of ``irrepscope analyze`` on a features file or ``FeatureSet``, written to
    ``out_dir`` (figures, utilization.csv, embeddings.npz, projections.npz, summary.json)."""
    import json

    fs = features if isinstance(features, FeatureSet) else load_features(features)
    fs.validate()
    emb = fs.embeddings()
    analysis = analyse_embeddings(emb, Path(out_dir), seed, Path(fs.source).name, probe, panel,
                                  n_landmark, progress, list(fs.notes))
    if fs.targets is None:
        analysis.notes.append("No targets were given: probe_r2_energy is n/a.")
    if fs.smiles is None:
        analysis.notes.append("No SMILES were given: NSPS colours and numbers are n/a.")
    analysis.summary.update(
        source=fs.source, layer_names={k: layer.name for k, layer in enumerate(fs.layers)},
        layer_irreps={k: str(layer.irreps) for k, layer in enumerate(fs.layers)},
        figures={k: str(v.relative_to(analysis.out_dir)) for k, v in analysis.figures.items()})
    atomic_write_text(analysis.out_dir / "summary.json",
                      json.dumps(analysis.summary, indent=2, default=float) + "\n")
    return analysis


def analyze_features(features: FeatureSet | str | Path, out_dir: str | Path,
                     probe: ModelProbe | None = None, seed: int = 0, panel: str | None = None,
                     progress: bool = True) -> Path:
    """``irrepscope analyze --features FILE``: analyse and write report.md / report.html."""
    from irrepscope.analysis.report import features_document, write_report

    analysis = analyse_features(features, out_dir, probe, seed, panel, progress=progress)
    return write_report(features_document(analysis), analysis.out_dir,
                        f"irrepscope analysis: {analysis.run_dir.name}")
