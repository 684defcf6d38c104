"""The findings campaign's numbers, collected from its run directories into CSV and Markdown.

Per arm (one condition, several seeds): test MSE and MAE (eV², eV) and the composition
baseline's test MSE on the same split, as mean ± sample standard deviation over the seeds that
finished (the count is a column), the model / baseline MSE ratio, parameters, training time
(s, summed over epochs; for an arm that continues another run, both runs' times) and the
last epoch's training throughput (molecules/s), plus every dipole or quadrupole test metric
a run records and its baselines. Per arm and order l: the last block's variance share,
ablation and probe R² (``irrepscope analyze``). Files: ``tables/runs.csv`` (one row per
run), ``tables/arms.csv``, ``tables/utilization.csv`` and ``findings_tables.md``.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from irrepscope.analysis.side_by_side import NUMBERS, last_block_rows
from irrepscope.bench.record import markdown_table
from irrepscope.train.seed_stats import mean_std as seed_mean_std

RUN_NUMBERS = ("test_mse", "test_mae", "baseline_test_mse", "ratio", "parameters",
               "wall_time_s", "train_mol_per_s")
TARGET_WORDS = ("dipole", "quadrupole")


def _json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def _wall(run_dir: Path) -> float | None:
    metrics = _json(run_dir / "test_metrics.json")
    return None if metrics is None else metrics.get("wall_time_s")


def _throughput(run_dir: Path) -> float | None:
    from irrepscope.train.run_records import read_metrics

    rows = read_metrics(run_dir / "metrics.csv")
    return rows[-1].get("train_mol_per_s") if rows else None


def run_row(arm: Any, seed: int) -> dict[str, Any] | None:
    """The numbers of one finished run of ``arm`` (None when it has no test_metrics.json)."""
    run_dir = arm.runs[seed]
    metrics = _json(run_dir / "test_metrics.json")
    if metrics is None:
        return None
    config = (run_dir / "config.yaml").read_text() if (run_dir / "config.yaml").exists() else ""
    import yaml

    model = (yaml.safe_load(config) or {}).get("model", {})
    before = arm.before.get(seed)
    wall = metrics.get("wall_time_s")
    if before is not None and wall is not None:
        earlier = _wall(before)
        wall = None if earlier is None else wall + earlier
    base = metrics.get("baseline_test_mse")
    row = {"stage": arm.stage, "arm": arm.label, "seed": seed, "run_dir": str(run_dir),
           "orders": _orders(model), "test_mse": metrics.get("test_mse"),
           "test_mae": metrics.get("test_mae"), "baseline_test_mse": base,
           "ratio": metrics["test_mse"] / base if base and metrics.get("test_mse") is not None
           else None, "parameters": metrics.get("parameters"), "wall_time_s": wall,
           "train_mol_per_s": _throughput(run_dir)}
    row.update({k: v for k, v in metrics.items() if is_target_metric(k)})
    return row


def is_target_metric(key: str) -> bool:
    """Whether a test_metrics.json key is a dipole/quadrupole test error or its baseline."""
    return (key.startswith(("test_", "baseline_test_")) and not key.endswith("_count")
            and any(word in key for word in TARGET_WORDS))


def _orders(model: dict[str, Any]) -> str:
    """'[0, 1, 2]', or '[0, 1, 2] (hidden [0, 2])' for a model whose hidden orders differ."""
    orders, hidden = model.get("orders"), model.get("hidden_orders")
    return str(orders) if hidden in (None, orders) else f"{orders} (hidden {hidden})"


def mean_std(values: Sequence[Any]) -> tuple[float, float]:
    """(mean, sample std) of the finite values (None and NaN left out); NaN where too few."""
    return seed_mean_std([float(v) for v in values if v is not None and math.isfinite(float(v))])


def _pm(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.4g}" if math.isnan(std) else f"{mean:.4g} ± {std:.2g}"


def _plain(value: float, spec: str) -> str:
    return "n/a" if math.isnan(value) else format(value, spec)


def arm_row(arm: Any, rows: Sequence[dict[str, Any]], numbers: Sequence[str]
            ) -> dict[str, Any]:
    """Mean and std over an arm's finished runs of each of ``numbers``."""
    out: dict[str, Any] = {"stage": arm.stage, "arm": arm.label,
                           "orders": rows[0]["orders"] if rows else None,
                           "seeds_finished": len(rows), "seeds_planned": len(arm.runs)}
    for name in numbers:
        out[f"{name}_mean"], out[f"{name}_std"] = mean_std([r.get(name) for r in rows])
    return out


def utilization_rows(arm: Any) -> list[dict[str, Any]]:
    """Per l: mean and std over the arm's analysed runs of each utilization number."""
    per_l: dict[int, list[dict[str, Any]]] = {}
    for run_dir in arm.runs.values():
        summary = _json(run_dir / "analysis" / "summary.json")
        if summary is not None:
            for l, row in last_block_rows(summary).items():
                per_l.setdefault(l, []).append(row)
    out = []
    for l in sorted(per_l):
        row: dict[str, Any] = {"stage": arm.stage, "arm": arm.label, "l": l,
                               "runs": len(per_l[l])}
        for name in NUMBERS:
            row[f"{name}_mean"], row[f"{name}_std"] = mean_std([r[name] for r in per_l[l]])
        out.append(row)
    return out


def _write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_tables(arms: Sequence[Any], out: Path, notes: Sequence[str] = ()) -> Path:
    """Collect every arm's runs into out/tables/*.csv and out/findings_tables.md; returns the
    Markdown file's path."""
    tables = Path(out) / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    runs, arm_rows, util = [], [], []
    for arm in arms:
        rows = [r for r in (run_row(arm, seed) for seed in arm.runs) if r is not None]
        runs += rows
        extra = sorted({k for r in rows for k in r if is_target_metric(k)})
        arm_rows.append(arm_row(arm, rows, [*RUN_NUMBERS, *extra]))
        util += utilization_rows(arm) if arm.analysed else []
    _write_csv(tables / "runs.csv", runs)
    _write_csv(tables / "arms.csv", arm_rows)
    _write_csv(tables / "utilization.csv", util)
    path = Path(out) / "findings_tables.md"
    path.write_text(findings_markdown(arm_rows, util, notes))
    return path


def findings_markdown(arm_rows: Sequence[dict[str, Any]], util: Sequence[dict[str, Any]],
                      notes: Sequence[str]) -> str:
    """Per stage: the arms' errors table, then their utilization per l."""
    parts = ["# Findings tables", "Mean ± sample standard deviation over the seeds that "
             "finished. Baseline: least squares of the energy on the element counts, fitted on "
             "the same training split. Training time sums the epochs (both runs for an arm "
             "that continues another); it and the last epoch's training mol/s were measured "
             "while the campaign's parallel runs shared the machine, so compare them within "
             "one campaign only. Every command run is in commands.txt."]
    parts += [f"- {note}" for note in notes]
    for stage in dict.fromkeys(r["stage"] for r in arm_rows):
        rows = [r for r in arm_rows if r["stage"] == stage]
        header = ["arm", "L", "seeds", "test MSE (eV²)", "baseline test MSE (eV²)",
                  "MSE / baseline", "test MAE (eV)", "parameters", "training time (s)",
                  "train mol/s"]
        body = [[r["arm"], str(r["orders"]), f"{r['seeds_finished']}/{r['seeds_planned']}",
                 *(_pm(r[f"{n}_mean"], r[f"{n}_std"]) for n in
                   ("test_mse", "baseline_test_mse", "ratio", "test_mae")),
                 _plain(r["parameters_mean"], ",.0f"), _plain(r["wall_time_s_mean"], ".0f"),
                 _plain(r["train_mol_per_s_mean"], ".3g")] for r in rows]
        parts += [f"## {stage}", markdown_table(header, body)]
        extra = sorted({k[:-5] for r in rows for k in r
                        if k.endswith("_mean") and is_target_metric(k[:-5])})
        if extra:
            parts += ["Dipole and quadrupole test errors and their baselines (units in "
                      "docs/training.md, \"Targets\"):",
                      markdown_table(["arm", *extra], [
                          [r["arm"], *(_pm(r.get(f"{n}_mean", math.nan),
                                           r.get(f"{n}_std", math.nan)) for n in extra)]
                          for r in rows])]
        stage_util = [u for u in util if u["stage"] == stage]
        if stage_util:
            parts += [f"Utilization per l (last block, mean ± std over {stage} runs):",
                      markdown_table(["arm", "l", "runs", *NUMBERS], [
                          [u["arm"], str(u["l"]), str(u["runs"]),
                           *(_pm(u[f"{n}_mean"], u[f"{n}_std"]) for n in NUMBERS)]
                          for u in stage_util])]
    return "\n\n".join(parts) + "\n"
