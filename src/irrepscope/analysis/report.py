"""Reports: report.md and a self-contained report.html (images base64-embedded) of one run or a
comparison of runs. Public entry points: ``analyze_run`` and ``compare_runs``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from irrepscope.analysis import side_by_side
from irrepscope.analysis.analyze import TABLE_COLUMNS, Analysis, analyse, load_projections
from irrepscope.analysis.report_render import Block, render_html, render_markdown
from irrepscope.analysis.seed_groups import (
    group_runs,
    read_config_or_none,
    seed_blocks,
    seed_groups_json,
)
from irrepscope.analysis.verdict import (
    SWITCHED_OFF_RELATIVE_SCALE,
    Verdict,
    model_block,
    model_rows,
    relative_scales,
    run_verdict,
)
from irrepscope.analysis.verdict_compare import comparison_verdict, pruned_verdict
from irrepscope.errors import RunDirError
from irrepscope.files import atomic_write_text

VIEWS_EXPLAINED = (
    "Two views of each order l: *raw* uses l's mul·(2l+1) pooled components, as in the paper; "
    "*invariant* uses the norm of each channel's (2l+1)-vector (mul numbers; l=0 keeps the "
    "signed scalar). Raw l>0 components rotate with the molecule, and QM9 orientations are "
    "arbitrary, so raw projections mix orientation bookkeeping into the picture; the invariant "
    "view does not. An l whose features are constant over the test set is shown as "
    "'unused irrep'."
)
COLUMNS_EXPLAINED = (
    "Columns: variance_share = share of the embedding's variance in l's raw columns; "
    "relative_scale = RMS of l's features over the RMS of the same block's l=0 features; "
    f"switched_off = relative_scale below {SWITCHED_OFF_RELATIVE_SCALE:g} (analysis.verdict): "
    "the probe numbers of such a row are computed on near-zero features; "
    "probe_r2_* = 5-fold cross-validated ridge R² from l's invariant features; "
    "nsps_consistency_* = mean |ΔNSPS| to the 10 nearest neighbours in l's PHATE projection "
    "over the mean |ΔNSPS| of all pairs (1 = no structure, 0 = perfect); ablation_rel_mse = "
    "relative change of test MSE when l is zeroed inside every block; grad_abs / "
    "grad_x_input_share = input-gradient attribution of the energy to l (see notes)."
)


OVER_TRAINING_CAPTION = ("Use of each l over training (irreps_over_training.csv, "
                         "train.track_irreps): last block, on fixed validation molecules")
BASELINE_EXPLAINED = (
    "Composition baseline: least squares of the energy on the element counts (one energy per "
    "element, no intercept), fitted on the run's training molecules and scored on its test "
    "molecules (baseline.json). A model that does not beat it has learned less than its "
    "molecular formula."
)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _table_block(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> Block:
    return ("table", list(columns), [[_fmt(r.get(c, "")) for c in columns] for r in rows])


def write_report(doc: list[Block], out_dir: Path, title: str) -> Path:
    """report.md and report.html of a document in ``out_dir``; returns report.html."""
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "report.md", render_markdown(doc, out_dir))
    path = out_dir / "report.html"
    atomic_write_text(path, render_html(doc, title))
    return path


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


def baseline_ratio(summary: dict[str, Any]) -> float:
    """Test MSE over the composition baseline's test MSE (NaN when there is no baseline)."""
    base = _number(summary.get("baseline_test_mse"))
    return _number(summary.get("test_mse")) / base if base > 0 else float("nan")


def baseline_warning(summary: dict[str, Any]) -> str | None:
    """The warning text for a run whose test MSE is not below the baseline's, else None."""
    if not baseline_ratio(summary) >= 1.0:  # NaN (no baseline) gives no warning
        return None
    return (f"this model is worse than counting atoms: its test MSE "
            f"{_fmt(_number(summary['test_mse']))} eV² is not below the composition baseline's "
            f"{_fmt(_number(summary['baseline_test_mse']))} eV² (least squares of the energy on "
            f"the element counts, fitted on the same training split), so its irrep analysis "
            f"describes an untrained model.")


def _metrics_block(summary: dict[str, Any]) -> Block:
    rows = [["test MSE (eV², best.ckpt)", _fmt(summary["test_mse"])],
            ["composition baseline test MSE (eV²)",
             _fmt(_number(summary.get("baseline_test_mse")))],
            ["test MSE / baseline test MSE", _fmt(baseline_ratio(summary))],
            ["test MSE recomputed here (eV²)", _fmt(summary["test_mse_recomputed"])],
            ["test MAE (eV)", _fmt(summary.get("test_mae") or float("nan"))],
            ["composition baseline test MAE (eV)",
             _fmt(_number(summary.get("baseline_test_mae")))],
            ["test molecules", summary["num_test"]], ["parameters", summary["parameters"]],
            ["epochs", summary["epochs"]], ["seed", summary["seed"]]]
    return ("table", ["quantity", "value"], rows)


def _targets_block(summary: dict[str, Any]) -> list[Block]:
    """Test errors of charges, dipole and quadrupole beside their baselines (if trained)."""
    from irrepscope.train.target_baseline import format_target_summary

    text = format_target_summary(summary.get("targets", {}))
    if not text:
        return []
    return [("h2", "Other targets (test split, best.ckpt)"), ("ul", text.split("; ")),
            ("p", "MAE of the error vector's length for the dipole (e·Å) and the quadrupole's 5 "
                  "components (e·Å²), per atom for charges (e); baselines from targets.json "
                  "(docs/training.md, 'Targets').")]


def _analysis_blocks(analysis: Analysis) -> list[Block]:
    """Utilization table and projection figures: the part shared by runs and features files."""
    s, figs = analysis.summary, analysis.figures
    names = s.get("layer_names", {})
    doc: list[Block] = [("h2", "Utilization per l"), _table_block(analysis.table, TABLE_COLUMNS),
                        ("p", COLUMNS_EXPLAINED),
                        ("img", figs["utilization"],
                         f"Utilization numbers of block {s.get('model_block', s['last_block'])} "
                         f"per l"),
                        ("h2", "Embedding projections (PHATE, coloured by NSPS)"),
                        ("p", VIEWS_EXPLAINED),
                        *explorer_blocks([("", analysis.out_dir, s)])]
    for b in s["blocks"]:
        name = f" ({names[b]})" if b in names else ""
        doc.append(("img", figs[f"projections_block{b}"],
                    f"Block {b}{name}{' (last)' if b == s['last_block'] else ''}: joint and "
                    f"per-l projections, raw (top) and invariant (bottom) views"))
    doc += [("img", path, f"Quadrant extremes of {name.removeprefix('extremes_')}: in each "
                          f"quadrant, the molecule farthest from the median")
            for name, path in figs.items() if name.startswith("extremes_")]
    return doc


def explorer_blocks(runs: Sequence[tuple[str, Path, dict[str, Any]]]) -> list[Block]:
    """Interactive explorers of the projections of analysed runs (the block with the model
    numbers: ``verdict.model_block``), given as (label, analysis folder, summary); runs of the
    same molecules share one."""
    from irrepscope.analysis.explorer import analysis_explorers
    from irrepscope.analysis.figures import panel_keys

    found = analysis_explorers([(label, folder, model_block(s), panel_keys(s["orders"]))
                                for label, folder, s in runs])
    caption = ("Explorer of the last block's projections{}: hover a point for the molecule, "
               "drag to select (the selection shows in every panel), menu to recolour")
    return [("explorer", fragment, caption.format(f" ({', '.join(labels)})" if labels[0]
                                                  else "")) for fragment, labels in found]


def verdict_scales(analysis_dir: Path, summary: dict[str, Any]) -> dict[int, float] | None:
    """{l: relative scale} of the verdict's block from analysis_dir/embeddings.npz (None when
    the rows carry ``relative_scale`` or the file is missing)."""
    rows = model_rows(summary)
    path = Path(analysis_dir) / "embeddings.npz"
    if any("relative_scale" in r for r in rows) or not path.exists():
        return None
    data = np.load(path)
    block = model_block(summary)
    return relative_scales({int(r["l"]): data[f"block{block}_l{int(r['l'])}_raw"] for r in rows
                            if f"block{block}_l{int(r['l'])}_raw" in data.files})


def _verdict(analysis: Analysis, summary: dict[str, Any], run_dir: str | None) -> Verdict:
    return run_verdict(summary, model_rows(analysis.summary, analysis.table),
                       verdict_scales(analysis.out_dir, analysis.summary), run_dir)


def _pruned_verdict(run_dir: Path) -> Verdict | None:
    from irrepscope.train.ownership import PRUNED_FROM_FILE

    path = run_dir / PRUNED_FROM_FILE
    return pruned_verdict(json.loads(path.read_text())) if path.exists() else None


def _sh_orders_text(summary: dict[str, Any]) -> str:
    """' (spherical harmonics [0, 1, 2])' when they differ from the hidden orders, else ''."""
    sh = summary.get("sh_orders", summary["orders"])
    return "" if sh == summary["orders"] else f" (spherical harmonics {sh})"


def run_document(analysis: Analysis) -> list[Block]:
    """The document of one analysed run."""
    s = analysis.summary
    config_text = (analysis.run_dir / "config.yaml").read_text() if (
        analysis.run_dir / "config.yaml").exists() else json.dumps(analysis.config.to_dict())
    verdict = _verdict(analysis, s, str(analysis.run_dir))
    pruned = _pruned_verdict(analysis.run_dir)
    if pruned is not None:
        pruned.extend(verdict)
        verdict = pruned
    doc: list[Block] = [("h1", f"irrepscope analysis: {analysis.run_dir.name}"),
                        ("verdict", verdict),
                        ("p", f"Run directory: {analysis.run_dir}. L={s['orders']}"
                              f"{_sh_orders_text(s)}, "
                              f"h={s['hidden']}; analysed the {s['num_test']} test molecules "
                              f"stored in split.npz with best.ckpt."),
                        *side_by_side.initialisation_blocks([analysis.run_dir.name],
                                                            [analysis.run_dir]),
                        ("h2", "Metrics"), _metrics_block(s),
                        ("p", BASELINE_EXPLAINED), *_targets_block(s)]
    warning = baseline_warning(s)
    if warning:
        doc.insert(2, ("warn", warning))
    figs = analysis.figures
    if "learning_curve" in figs:
        doc.append(("img", figs["learning_curve"], "Learning curve from metrics.csv"))
    if "irreps_over_training" in figs:
        doc.append(("img", figs["irreps_over_training"], OVER_TRAINING_CAPTION))
    doc += _analysis_blocks(analysis)
    doc.append(("img", figs["tensor_product_paths"],
                "Tensor-product paths: which input and spherical-harmonic orders feed which "
                "outputs"))
    doc += _pruned_from_blocks(analysis.run_dir)
    doc += [("h2", "Notes"), ("ul", analysis.notes), ("h2", "Config"), ("pre", config_text)]
    return doc


def _pruned_from_blocks(run_dir: Path) -> list[Block]:
    """The prune report of a run made by `irrepscope prune` (none for other runs)."""
    from irrepscope.train.ownership import PRUNE_REPORT_FILE

    path = run_dir / PRUNE_REPORT_FILE
    if not path.exists():
        return []
    return [("h2", "Pruned from another run (prune_report.md)"), ("pre", path.read_text())]


def features_document(analysis: Analysis, numbers: dict[str, Any] | None = None
                      ) -> list[Block]:
    """The document of an analysed features file (``irrepscope.analysis.features``);
    ``numbers``: the errors and baseline the verdict states (default: the file's predictions,
    no baseline)."""
    s = analysis.summary
    layers = ", ".join(f"{b}: {s['layer_names'][b]} ({s['layer_irreps'][b]})"
                       for b in s["blocks"])
    if numbers is None:
        errors = analysis.embeddings.energy_pred - analysis.embeddings.energy_true
        numbers = {"test_mse": float(np.mean(errors ** 2)) if np.isfinite(errors).all()
                   else None,
                   "baseline_missing": "a features file has no element counts to fit it on",
                   "error_name": "MSE of the file's predictions",
                   "error_unit": "(target unit)²",
                   "ablation_molecules": s.get("ablation_molecules")}
    return [("h1", f"irrepscope analysis: {analysis.run_dir.name}"),
            ("verdict", _verdict(analysis, numbers, None)),
            ("p", f"Features of {s['num_test']} molecules from {analysis.run_dir}; layers "
                  f"{layers}."),
            *_analysis_blocks(analysis), ("h2", "Notes"), ("ul", analysis.notes)]


MODEL_BASELINE_EXPLAINED = (
    "Composition baseline: least squares of the given energies on the element counts (one "
    "energy per element, no intercept), fitted on the analysed molecules themselves "
    "(in-sample, which favours the baseline). A model that does not beat it has learned less "
    "than its molecular formula."
)


def model_document(analysis: Analysis) -> list[Block]:
    """The document of a model file analysed on an xyz file (``analysis.model_file``)."""
    s = analysis.summary
    rows = [["model MAE (eV)", _fmt(_number(s["test_mae"]))],
            ["composition baseline MAE (eV)", _fmt(_number(s["baseline_test_mae"]))],
            ["model MSE (eV²)", _fmt(_number(s["test_mse"]))],
            ["composition baseline MSE (eV²)", _fmt(_number(s["baseline_test_mse"]))],
            ["MSE / baseline MSE", _fmt(baseline_ratio(s))],
            ["molecules", s["num_test"]]]
    doc = features_document(analysis, {**s, "error_name": "MSE on the given molecules",
                                           "baseline_scope": "fitted on these molecules"})
    doc[3:3] = [("h2", "Metrics"), ("table", ["quantity", "value"], rows),
                ("p", MODEL_BASELINE_EXPLAINED)]
    if baseline_ratio(s) >= 1.0:
        doc.insert(2, ("warn", f"this model is worse than counting atoms on these molecules: "
                               f"its MSE {_fmt(_number(s['test_mse']))} eV² is not below the "
                               f"composition baseline's {_fmt(_number(s['baseline_test_mse']))} "
                               f"eV², so its irrep analysis describes a model that has not "
                               f"learned these energies."))
    return doc


def analyze_run(run_dir: Path, blocks: list[int] | None = None, panel: str | None = None,
                progress: bool = True) -> Path:
    """Analyse a trained run into run_dir/analysis/ and return the path of report.html."""
    analysis = analyse(Path(run_dir), blocks=blocks, panel=panel, progress=progress)
    return write_report(run_document(analysis), analysis.out_dir,
                  f"irrepscope analysis: {analysis.run_dir.name}")


def _over_training_blocks(names: Sequence[str], summaries: Sequence[dict[str, Any]],
                          out: Path) -> list[Block]:
    """'Use of each l over training' figures of the runs that tracked it."""
    from irrepscope.analysis import figures
    from irrepscope.train.run_records import TRACKING_FILE

    doc: list[Block] = []
    for name, s in zip(names, summaries, strict=True):
        path = Path(s["run_dir"]) / TRACKING_FILE
        if path.exists():
            fig = figures.figure_irreps_over_training(path, out / f"over_training_{name}.png",
                                                      f"{name}: use of each l over training")
            doc.append(("img", fig, f"{name}: {OVER_TRAINING_CAPTION[0].lower()}"
                                    f"{OVER_TRAINING_CAPTION[1:]}"))
    untracked = [n for n, s in zip(names, summaries, strict=True)
                 if not (Path(s["run_dir"]) / TRACKING_FILE).exists()]
    if doc and untracked:
        doc.append(("p", f"Not tracked over training (train.track_irreps unset): "
                         f"{', '.join(untracked)}."))
    return ([("h2", "Use of each l over training")] + doc) if doc else []


def _load_summary(run_dir: Path, progress: bool) -> tuple[dict[str, Any], list[str]]:
    path = run_dir / "analysis" / "summary.json"
    notes = []
    if not path.exists():
        if not (run_dir / "best.ckpt").exists():
            raise RunDirError(f"{run_dir}: no best.ckpt; train it with `irrepscope train` first")
        notes.append(f"{run_dir}: not analysed yet; ran `irrepscope analyze` on it first.")
        analyze_run(run_dir, progress=progress)
    return json.loads(path.read_text()), notes


def compare_runs(run_dirs: Sequence[Path], out: Path, progress: bool = True,
                 notes: Sequence[str] = ()) -> Path:
    """Several runs side by side in out/: Table 1-style table, utilization, Figure 1 panels.

    Runs of one config at several seeds are grouped (mean ± std, paired t-test against the
    first config: ``analysis.seed_groups``). Runs not analysed yet are analysed first;
    ``notes`` are added to the report's notes.
    """
    from irrepscope.analysis import figures

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out {out} is a file; give a folder for the comparison report")
    out.mkdir(parents=True, exist_ok=True)
    summaries, notes = [], list(notes)
    for run_dir in run_dirs:
        summary, more = _load_summary(Path(run_dir), progress)
        summary["run_dir"] = str(run_dir)  # where it is now (a run dir may have been moved)
        summary["init_from"] = side_by_side.read_init_record(Path(run_dir))
        summaries.append(summary)
        notes += more
    names = [Path(s["run_dir"]).name for s in summaries]
    if len(set(names)) < len(names):  # same folder name in different places: add the parent
        names = [f"{Path(s['run_dir']).parent.name}_{Path(s['run_dir']).name}" for s in summaries]
    table1 = [[name, str(s["orders"]), s["epochs"], s["hidden"],
               f"{s['parameters'] / 1e6:.3f}", _fmt(float(s["test_mse"])),
               _fmt(_number(s.get("baseline_test_mse"))), _fmt(baseline_ratio(s))]
              for name, s in zip(names, summaries, strict=True)]
    warnings = [f"{name}: {baseline_warning(s)}" for name, s in zip(names, summaries, strict=True)
                if baseline_warning(s)]
    util_rows = [{"run": name, **row} for name, s in zip(names, summaries, strict=True)
                 for row in s["table"] if row["block"] == s["last_block"]]
    groups = group_runs(names, summaries, [read_config_or_none(Path(r)) for r in run_dirs])
    folders = [Path(s["run_dir"]) / "analysis" for s in summaries]
    verdict = comparison_verdict(names, summaries, groups,
                                 [verdict_scales(f, s) for f, s in zip(folders, summaries,
                                                                        strict=True)])
    doc: list[Block] = [
        ("h1", "irrepscope comparison: " + ", ".join(names)),
        ("verdict", verdict),
        *[("warn", text) for text in warnings],
        *side_by_side.initialisation_blocks(names, [Path(s["run_dir"]) for s in summaries]),
        ("h2", "Test error (Table 1 style)"),
        ("table", ["run", "L", "epochs", "h", "# parameters (M)", "test MSE (eV²)",
                   "baseline test MSE (eV²)", "MSE / baseline"], table1),
        ("p", BASELINE_EXPLAINED),
        *seed_blocks(groups),
        ("h2", "Utilization per l (last block)"),
        _table_block(util_rows, ["run", *TABLE_COLUMNS]), ("p", COLUMNS_EXPLAINED),
        *side_by_side.side_by_side_blocks(names, summaries),
        *_over_training_blocks(names, summaries, out),
        ("h2", "Embedding projections (last block, PHATE, coloured by NSPS)"),
        ("p", VIEWS_EXPLAINED),
        *explorer_blocks(list(zip(names, folders, summaries, strict=True))),
    ]
    for name, s in zip(names, summaries, strict=True):
        analysis_dir = Path(s["run_dir"]) / "analysis"
        panels, nsps = load_projections(analysis_dir / "projections.npz", s["last_block"])
        fig = figures.figure_projections(
            panels, figures.panel_keys(s["orders"]), nsps, out / f"projections_{name}.png",
            f"{name}: L={s['orders']}, h={s['hidden']}, test MSE {_fmt(float(s['test_mse']))}"
            " eV²")
        doc.append(("img", fig, f"{name}: joint and per-l projections (raw top, invariant "
                                f"bottom)"))
        util = analysis_dir / s["figures"]["utilization"]
        doc.append(("img", util, f"{name}: utilization per l"))
    if notes:
        doc += [("h2", "Notes"), ("ul", notes)]
    side_by_side.write_side_by_side_csv(out / side_by_side.CSV_FILE, names, summaries)
    atomic_write_text(out / "comparison.json", json.dumps(
        {"runs": summaries, "seed_groups": seed_groups_json(groups)}, indent=2,
        default=float) + "\n")
    return write_report(doc, out, "irrepscope comparison")
