"""``irrepscope data info``: counts, label statistics, bond check against SMILES, cache."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np

from irrepscope.data.dataset import load_dataset
from irrepscope.data.targets import DEBYE_PER_E_ANGSTROM, invariants

_SYMBOLS = {1: "H", 6: "C", 7: "N", 8: "O", 9: "F"}
NUM_EXAMPLES = 5


def _stats(values: np.ndarray) -> dict:
    if len(values) == 0:
        return {"min": 0, "mean": 0.0, "max": 0}
    return {"min": int(values.min()), "mean": round(float(values.mean()), 3),
            "max": int(values.max())}


def _mulliken_summary(ds) -> dict | None:
    """Mean norms of the charge-derived targets (None without charges; docs/data.md)."""
    if not ds.has_charges:
        return None
    norms = invariants(ds.dipole.double().numpy(), ds.quadrupole.double().numpy())
    return {"dipole_mean_debye": round(float(np.nanmean(norms["dipole_norm"]))
                                       * DEBYE_PER_E_ANGSTROM, 4),
            "quadrupole_norm_mean": round(float(np.nanmean(norms["quadrupole_norm"])), 4),
            "charge_problems": len(ds.metadata.get("charge_problems", []))}


def data_info(graph: str = "bonds", cutoff: float = 6.0, data_dir: str | Path | None = None,
              xyz: str | Path | None = None, energy_key: str = "energy") -> dict:
    """Summary of the processed data set (loading or building its cache): JSON-friendly dict."""
    start = time.perf_counter()
    ds = load_dataset(source="xyz" if xyz else "qm9", graph=graph, cutoff=cutoff,
                      data_dir=data_dir, xyz=xyz, energy_key=energy_key, skip_invalid=True)
    seconds = time.perf_counter() - start
    from rdkit import Chem

    table = Chem.GetPeriodicTable()
    z = ds._z.numpy()
    elements = {_SYMBOLS.get(int(k)) or table.GetElementSymbol(int(k)): int(v)
                for k, v in sorted(Counter(z.tolist()).items())}
    y = ds.y.double().numpy()
    meta = ds.metadata
    disagreements = meta.get("bond_disagreements", [])
    path = ds.cache_path
    return {
        "source": meta.get("source", ""),
        "molecules": len(ds),
        "elements": elements,
        "graph": graph,
        "cutoff": cutoff,
        "atoms_per_molecule": _stats(ds.num_atoms),
        "edges_per_molecule": _stats(ds.num_edges),
        "label_mean_ev": round(float(y.mean()), 4) if len(y) else None,
        "label_std_ev": round(float(y.std(ddof=1)), 4) if len(y) > 1 else None,
        "skipped": len(meta.get("skipped", [])),
        "skipped_examples": meta.get("skipped", [])[:NUM_EXAMPLES],
        "smiles_checked": bool(meta.get("smiles_checked")),
        "bond_disagreements": len(disagreements),
        "bond_disagreement_examples": disagreements[:NUM_EXAMPLES],
        "mulliken": _mulliken_summary(ds),
        "cache_path": str(path) if path else None,
        "cache_bytes": path.stat().st_size if path and path.exists() else None,
        "processing_seconds": meta.get("processing_seconds"),
        "load_seconds": round(seconds, 3),
    }


def format_data_info(info: dict) -> str:
    """Human-readable text of a ``data_info`` dict."""
    def mmm(d: dict) -> str:
        return f"min {d['min']}, mean {d['mean']}, max {d['max']}"

    n = info["molecules"]
    lines = [
        f"source: {info['source']}",
        f"molecules: {n:,}",
        "elements: " + ", ".join(f"{k} {v:,}" for k, v in info["elements"].items()),
        f"atoms per molecule: {mmm(info['atoms_per_molecule'])}",
        f"edges per molecule ({info['graph']}"
        + (f", cutoff {info['cutoff']:g} Å" if info["graph"] == "radius" else "")
        + f"): {mmm(info['edges_per_molecule'])}",
        f"label: mean {info['label_mean_ev']} eV, std {info['label_std_ev']} eV",
        f"skipped invalid molecules: {info['skipped']}",
    ]
    mulliken = info.get("mulliken")
    lines.append("Mulliken charges: none" if not mulliken else
                 f"Mulliken charges: mean |dipole| {mulliken['dipole_mean_debye']} D, mean "
                 f"||quadrupole|| {mulliken['quadrupole_norm_mean']} e·Å², "
                 f"{mulliken['charge_problems']} molecule(s) without valid charges")
    lines += [f"  molecule {p['index']}: {p['problem']}" for p in info["skipped_examples"]]
    if info["smiles_checked"]:
        share = 100 * info["bond_disagreements"] / max(n, 1)
        lines.append(f"bonds perceived from the geometry that disagree with the SMILES: "
                     f"{info['bond_disagreements']:,} ({share:.2f}%); the graph keeps the "
                     f"geometry's bonds (docs/data.md)")
        lines += [f"  molecule {d['index']} {d['smiles']}: {d['geometry_bonds']} bonds vs "
                  f"{d['smiles_bonds']} in the SMILES; {d['difference']}"
                  for d in info["bond_disagreement_examples"]]
    size = info["cache_bytes"]
    lines.append(f"cache: {info['cache_path']}"
                 + (f" ({size / 2**20:.1f} MiB)" if size is not None else ""))
    lines.append(f"processing time (when the cache was built): {info['processing_seconds']} s; "
                 f"this load: {info['load_seconds']} s")
    return "\n".join(lines)
