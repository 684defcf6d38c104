"""The analysis of one trained run: embeddings -> NSPS -> projections -> utilization -> figures.

Everything lands in ``run_dir/analysis/``; ``report.py`` turns the returned ``Analysis`` into
report.md / report.html. Projections use ``random_state`` = the run's seed. The steps after
the embeddings (``analyse_embeddings``) are shared with features files of any model
(``irrepscope.analysis.features``); numbers that need the model come from a ``ModelProbe``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from e3nn import o3
from tqdm.auto import tqdm

from irrepscope.analysis import figures, utilization
from irrepscope.analysis.embeddings import (
    RunEmbeddings,
    TrainedRun,
    compute_embeddings,
    joint_view,
    open_run,
)
from irrepscope.analysis.nsps import NSPSScores, nsps_scores
from irrepscope.analysis.projection import Projection, phate_projection
from irrepscope.analysis.verdict import (
    is_switched_off,
    relative_scales,
    switched_off_notes,
)
from irrepscope.errors import ConfigError, IrrepscopeError, RunDirError
from irrepscope.files import atomic_output, atomic_write_text

TABLE_COLUMNS = ["block", "l", "columns", "variance_share", "relative_scale", "switched_off",
                 "probe_r2_energy", "probe_r2_nsps",
                 "nsps_consistency_raw", "nsps_consistency_invariant", "ablation_rel_mse",
                 "grad_abs", "grad_x_input_share"]


@dataclass
class Analysis:
    """Results of ``analyse``: per-block projections, the utilization table, figures, notes."""

    run_dir: Path
    out_dir: Path
    config: Any
    embeddings: RunEmbeddings
    nsps: NSPSScores
    projections: dict[int, dict[tuple[str, str], Projection]]
    table: list[dict[str, Any]]
    figures: dict[str, Path]
    summary: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def parse_panel(panel: str, orders: list[int]) -> tuple[str, str]:
    """'invariant:l=4' / 'raw:joint' / 'l=4' (view defaults to invariant) -> (view, key)."""
    view, _, key = panel.rpartition(":")
    view = view or "invariant"
    key = key.strip()
    if key.isdigit():
        key = f"l={key}"
    valid = figures.panel_keys(orders)
    if view not in figures.VIEWS or key not in valid:
        raise ConfigError(f"--panel {panel!r}: expected VIEW:KEY with VIEW in "
                          f"{'/'.join(figures.VIEWS)} and KEY in {', '.join(valid)}")
    return view, key


def _project_block(emb: RunEmbeddings, block: int, seed: int, n_landmark: int,
                   progress: bool) -> dict[tuple[str, str], Projection]:
    by_l = emb.by_l(block)
    jobs = []
    for view in figures.VIEWS:
        jobs.append((view, "joint", joint_view(by_l, view)))
        jobs += [(view, f"l={l}", by_l[l][view]) for l in sorted(by_l)]
    out = {}
    for view, key, x in tqdm(jobs, desc=f"PHATE block {block}", disable=not progress,
                             leave=False):
        name = f"{emb.run_dir} block {block} {view} {key}"
        out[(view, key)] = phate_projection(x, seed, name, n_landmark=n_landmark)
    return out


def _utilization_rows(emb: RunEmbeddings, block: int, nsps: np.ndarray,
                      proj: dict[tuple[str, str], Projection], seed: int) -> list[dict[str, Any]]:
    by_l = emb.by_l(block)
    share = utilization.variance_share({l: v["raw"] for l, v in by_l.items()})
    scale = relative_scales({l: v["raw"] for l, v in by_l.items()})
    rows = []
    for l, views in by_l.items():
        inv = views["invariant"]
        rows.append({
            "block": block, "l": l, "columns": views["raw"].shape[1],
            "variance_share": share[l], "relative_scale": scale[l],
            "switched_off": is_switched_off(scale[l]),
            "probe_r2_energy": utilization.ridge_probe_r2(inv, emb.energy_true, seed=seed),
            "probe_r2_nsps": utilization.ridge_probe_r2(inv, nsps, seed=seed),
            "nsps_consistency_raw": utilization.neighbourhood_consistency(
                proj[("raw", f"l={l}")].coords, nsps),
            "nsps_consistency_invariant": utilization.neighbourhood_consistency(
                proj[("invariant", f"l={l}")].coords, nsps),
            "ablation_rel_mse": float("nan"), "grad_abs": float("nan"),
            "grad_x_input_share": float("nan"),
        })
    return rows


class ModelProbe(Protocol):
    """The model behind the embeddings, for the numbers that need it (ablation, gradients).

    ``ablation`` -> (MSE in eV^2, {l: relative MSE change with l zeroed in every layer});
    ``input_gradients`` -> (layer index, {l: {"grad_abs", "grad_x_input"}}) per molecule;
    ``notes``: sentences for the report (sample sizes, which layer the gradients use).
    """

    notes: list[str]

    def ablation(self, orders: list[int], progress: bool) -> tuple[float, dict[int, float]]:
        """(MSE, relative MSE change per zeroed order l)."""
        ...

    def input_gradients(self, progress: bool) -> tuple[int, dict[int, dict[str, float]]]:
        """(layer index, attribution per l)."""
        ...


class RunProbe:
    """``ModelProbe`` of an irrepscope run: at most ``limit`` test molecules (seeded sample)."""

    def __init__(self, run: TrainedRun, emb: RunEmbeddings, limit: int, seed: int,
                 batch_size: int) -> None:
        from torch_geometric.loader import DataLoader

        self.model, self.notes = run.model, []
        n = len(run.test_graphs)
        self.molecules = min(n, limit)
        pick = np.arange(n)
        if n > limit:
            pick = np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))
            self.notes.append(f"Ablation and input gradients use {limit} of the {n} test "
                              f"molecules (drawn with the run seed {seed}); the other numbers "
                              f"use all {n}.")
        self.loader = DataLoader([run.test_graphs[i] for i in pick], batch_size=batch_size,
                                 shuffle=False)
        self.baseline = float(np.mean((emb.energy_pred[pick] - emb.energy_true[pick]) ** 2))

    def ablation(self, orders: list[int], progress: bool) -> tuple[float, dict[int, float]]:
        """Zero each l in every block (irrepscope.analysis.utilization.ablation)."""
        return utilization.ablation(self.model, self.loader, orders, progress=progress,
                                    baseline=self.baseline)

    def input_gradients(self, progress: bool) -> tuple[int, dict[int, dict[str, float]]]:
        """Gradients at the input of the last block (the readout sees l=0 only)."""
        last = len(self.model.block_irreps) - 1
        block = last - 1 if last > 0 else last
        self.notes.append(f"Input gradients are taken at the output of block {block} (the input "
                          f"of the last block): the readout is an l=0-only linear map, so dE/dx "
                          f"of the last block's l>0 columns is zero by construction.")
        return block, utilization.input_gradients(self.model, self.loader, block,
                                                  progress=progress)


def _default_panel(rows: list[dict[str, Any]], proj: dict[tuple[str, str], Projection]) -> str:
    """The invariant l>0 panel with the most NSPS structure (lowest consistency), else l=0;
    switched-off orders are passed over (their structure is that of near-zero features)."""
    candidates = [(r["nsps_consistency_invariant"], r["l"]) for r in rows
                  if r["l"] > 0 and not r.get("switched_off")
                  and proj[("invariant", f"l={r['l']}")].ok
                  and np.isfinite(r["nsps_consistency_invariant"])]
    return f"invariant:l={min(candidates)[1]}" if candidates else "invariant:l=0"


def block_orders(emb: RunEmbeddings, block: int) -> list[int]:
    """Sorted orders l present in one block's irreps."""
    return sorted({ir.l for _, ir in o3.Irreps(emb.irreps[block])})


def _model_numbers(table: list[dict[str, Any]], last: int, orders: list[int],
                   probe: ModelProbe | None, progress: bool, notes: list[str]) -> float:
    """Fill block ``last``'s ablation and gradient columns from ``probe``; returns its MSE."""
    if probe is None:
        notes.append("Ablation and input gradients: not available (they need the model; no "
                     "model was given), shown as n/a.")
        return float("nan")
    mse, ablated = probe.ablation(orders, progress)
    _, grads = probe.input_gradients(progress)
    notes += probe.notes
    total_gxi = sum(g["grad_x_input"] for g in grads.values())
    for row in table:
        if row["block"] == last:
            row["ablation_rel_mse"] = ablated.get(row["l"], float("nan"))
            g = grads.get(row["l"], {"grad_abs": float("nan"), "grad_x_input": float("nan")})
            row["grad_abs"] = g["grad_abs"]
            row["grad_x_input_share"] = (g["grad_x_input"] / total_gxi
                                         if total_gxi > 0 else float("nan"))
    return mse


def analyse_embeddings(emb: RunEmbeddings, out_dir: Path, seed: int, label: str,
                       probe: ModelProbe | None = None, panel: str | None = None,
                       n_landmark: int = 200, progress: bool = True,
                       notes: list[str] | None = None) -> Analysis:
    """The analysis shared by runs and features files: NSPS, projections, utilization table
    (model columns from ``probe``, n/a without it), figures and saved arrays in ``out_dir``.

    ``label`` titles the figures; ``seed`` seeds PHATE and the probes' folds.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    notes = [] if notes is None else notes
    last = max(emb.joint)
    model_block = max((b for b in emb.joint if max(block_orders(emb, b)) > 0), default=last)
    if model_block != last:
        notes.append(f"Block {last} holds scalars only (l=0): it is shown, and the model-"
                     f"dependent columns and the utilization figure use block {model_block}, "
                     f"the last block with l > 0 features.")
    orders = block_orders(emb, model_block)
    if panel is not None:
        parse_panel(panel, orders)  # fail early, before the slow steps
    if any(emb.smiles):
        scores = nsps_scores(emb.smiles, progress=progress)
    else:  # no SMILES given (features file): NSPS numbers are n/a, not "unscorable"
        scores = NSPSScores(np.full(len(emb.smiles), np.nan), [])
    if scores.num_unscorable:
        notes.append(f"NSPS: {scores.num_unscorable} of {len(emb.smiles)} molecules could "
                     f"not be scored by RDKit (grey in the figures), e.g. "
                     f"{scores.unscorable[0][1]!r}: {scores.unscorable[0][2]}")
    projections = {b: _project_block(emb, b, seed, n_landmark, progress) for b in emb.joint}
    for b, panels in projections.items():
        notes += [f"block {b} {view} {key}: {p.note}" for (view, key), p in panels.items()
                  if p.note]
    table = [row for b in sorted(emb.joint)
             for row in _utilization_rows(emb, b, scores.values, projections[b], seed)]
    constant = [b for b in sorted(emb.joint) if not np.ptp(emb.joint[b], axis=0).any()]
    if constant:
        notes.append(f"Block(s) {constant}: the features are the same for every molecule, so "
                     f"no l carries any variance: variance_share is 0 for every l there.")
    if len(emb.test_indices) < utilization.MIN_PROBE_ROWS:
        notes.append(f"Probe R² is not computed (NaN): {len(emb.test_indices)} test molecules, "
                     f"fewer than the {utilization.MIN_PROBE_ROWS} a cross-validated R² needs to "
                     f"mean anything.")
    mse = _model_numbers(table, model_block, orders, probe, progress, notes)
    notes += switched_off_notes(table)
    figs = _write_figures(out_dir, label, emb, scores, projections, table, panel, notes,
                          model_block)
    _write_table(out_dir, table)
    emb.save(out_dir / "embeddings.npz")
    _save_projections(out_dir / "projections.npz", projections, scores.values)
    summary = {"orders": orders, "num_test": len(emb.test_indices), "seed": seed,
               "last_block": last, "model_block": model_block, "blocks": sorted(emb.joint),
               "ablation_baseline_mse": mse,
               "nsps_unscorable": scores.num_unscorable, "table": table}
    return Analysis(emb.run_dir, out_dir, None, emb, scores, projections, table, figs,
                    summary, notes)


def analyse(run_dir: Path, blocks: list[int] | None = None, panel: str | None = None,
            n_landmark: int = 200, batch_size: int = 64, max_model_molecules: int = 128,
            progress: bool = True) -> Analysis:
    """Compute everything for one run and write figures, tables and embeddings to analysis/.

    Ablation and input gradients (|L| + 2 model passes) use at most ``max_model_molecules``
    test molecules, drawn with the run seed; everything else uses the whole test split.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir} is {'a file' if run_dir.exists() else 'missing'}, not a run "
                          f"directory; pass the folder `irrepscope train` wrote (with config.yaml "
                          f"and best.ckpt)")
    run = open_run(run_dir, progress=progress)  # fails before anything is written
    out_dir = run_dir / "analysis"
    config, seed = run.config, int(run.config.seed)
    orders, sh_orders = config.model.feature_orders, list(config.model.orders)
    if panel is not None:
        parse_panel(panel, orders)  # fail early, before the slow steps
    emb = compute_embeddings(run, blocks, batch_size=batch_size, progress=progress)
    probe = RunProbe(run, emb, max_model_molecules, seed, batch_size)
    label = f"{run_dir.name}: L={orders}, h={config.model.hidden}"
    analysis = analyse_embeddings(emb, out_dir, seed, label, probe, panel, n_landmark,
                                  progress)
    figs, notes = analysis.figures, analysis.notes
    from irrepscope.analysis.savings import add_prune_candidate

    add_prune_candidate(analysis.summary, analysis.table, run, probe.molecules)
    baseline = _baseline(run_dir, notes)
    figs["tensor_product_paths"] = figures.figure_tensor_product_paths(
        orders, out_dir / "tensor_product_paths.png", f"tensor-product paths, L={orders}"
        + ("" if sh_orders == orders else f", spherical harmonics {sh_orders}"), sh_orders)
    metrics = run_dir / "metrics.csv"
    if metrics.exists():
        figs["learning_curve"] = figures.figure_learning_curve(
            metrics, out_dir / "learning_curve.png", f"{label}: learning curve",
            baseline={kind: baseline.get(f"val_{kind}") for kind in ("mse", "mae")})
    else:
        notes.append("Learning curve skipped: metrics.csv is missing.")
    from irrepscope.train.run_records import TRACKING_FILE

    if (run_dir / TRACKING_FILE).exists():
        figs["irreps_over_training"] = figures.figure_irreps_over_training(
            run_dir / TRACKING_FILE, out_dir / "irreps_over_training.png",
            f"{label}: use of each l over training")
    from irrepscope.train.target_baseline import TARGET_METRIC

    test_mse_all = float(np.mean((emb.energy_pred - emb.energy_true) ** 2))
    metrics_path = run_dir / "test_metrics.json"
    test_metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    if not test_metrics:
        notes.append("test_metrics.json is missing; the table uses the MSE recomputed here.")
    analysis.config = config
    analysis.summary.update({
        "run_dir": str(run_dir), "orders": orders, "sh_orders": sh_orders,
        "hidden": config.model.hidden,
        "epochs": test_metrics.get("epochs_trained", config.train.max_epochs),
        "parameters": test_metrics.get("parameters",
                                       sum(p.numel() for p in run.model.parameters())),
        "test_mse": test_metrics.get("test_mse", test_mse_all),
        "test_mse_recomputed": test_mse_all, "test_mae": test_metrics.get("test_mae"),
        **{f"baseline_{k}": baseline.get(k) for k in ("val_mse", "val_mae", "test_mse",
                                                     "test_mae")},
        "figures": {k: str(v.relative_to(out_dir)) for k, v in figs.items()},
        "targets": {k: v for k, v in test_metrics.items() if TARGET_METRIC.search(k)},
    })
    atomic_write_text(out_dir / "summary.json",
                      json.dumps(analysis.summary, indent=2, default=float) + "\n")
    return analysis


def _baseline(run_dir: Path, notes: list[str]) -> dict[str, Any]:
    """The run's composition baseline (baseline.json, computed if missing), or {} with a note."""
    from irrepscope.train.run import run_baseline

    try:
        baseline = run_baseline(run_dir)
    except IrrepscopeError as err:
        notes.append(f"Composition baseline unavailable: {err}")
        return {}
    if baseline.get("error"):
        notes.append(f"Composition baseline unavailable: {baseline['error']}")
    return baseline


def _write_figures(out_dir: Path, label: str, emb: RunEmbeddings, scores: NSPSScores,
                   projections: dict, table: list[dict[str, Any]], panel: str | None,
                   notes: list[str], last: int | None = None) -> dict[str, Path]:
    """Projection grids of every block; extremes and utilization figures of block ``last``
    (default: the last block)."""
    last = max(emb.joint) if last is None else last
    figs = {}
    for b, panels in projections.items():
        figs[f"projections_block{b}"] = figures.figure_projections(
            panels, figures.panel_keys(block_orders(emb, b)), scores.values,
            out_dir / f"projections_block{b}.png",
            f"{label}, block {b} ({len(emb.test_indices)} molecules)")
    last_rows = [r for r in table if r["block"] == last]
    chosen = panel or _default_panel(last_rows, projections[last])
    view, key = parse_panel(chosen, block_orders(emb, last))
    proj = projections[last][(view, key)]
    if not any(emb.smiles):
        notes.append("Extremes figure skipped: no SMILES were given to draw the molecules.")
    elif proj.ok:
        name = f"extremes_{view}_{key.replace('=', '')}"
        figs[name] = figures.figure_extremes(proj, emb.smiles, scores.values,
                                             out_dir / f"{name}.png",
                                             f"{label}, block {last}, {view} {key}")
        if panel is None:
            notes.append(f"Extremes figure: panel {chosen} chosen automatically (the l>0 "
                         f"invariant panel with the lowest NSPS neighbourhood consistency).")
    else:
        notes.append(f"Extremes figure skipped: panel {view} {key} has no projection "
                     f"({proj.status}).")
    figs["utilization"] = figures.figure_utilization(last_rows, out_dir / "utilization.png",
                                                     f"{label}: utilization per l")
    return figs


def _write_table(out_dir: Path, table: list[dict[str, Any]]) -> Path:
    path = out_dir / "utilization.csv"
    with atomic_output(path, "w") as handle:
        writer = csv.DictWriter(handle, fieldnames=TABLE_COLUMNS)
        writer.writeheader()
        writer.writerows(table)
    return path


def _save_projections(path: Path, projections: dict, nsps: np.ndarray) -> Path:
    arrays: dict[str, np.ndarray] = {"nsps": nsps}
    for b, panels in projections.items():
        for (view, key), p in panels.items():
            tag = f"block{b}|{view}|{key}"
            arrays[f"status|{tag}"] = np.asarray(p.status)
            if p.ok:
                arrays[f"coords|{tag}"] = p.coords
    with atomic_output(path) as handle:
        np.savez_compressed(handle, **arrays)
    return path


def load_projections(path: Path, block: int) -> tuple[dict[tuple[str, str], Projection],
                                                      np.ndarray]:
    """Projections of one block and the NSPS values saved by ``analyse`` in projections.npz."""
    data = np.load(path)
    out = {}
    for name in data.files:
        if not name.startswith(f"status|block{block}|"):
            continue
        _, _, view, key = name.split("|")
        tag = f"block{block}|{view}|{key}"
        coords = data[f"coords|{tag}"] if f"coords|{tag}" in data.files else None
        out[(view, key)] = Projection(tag, coords, str(data[name]))
    return out, data["nsps"]
