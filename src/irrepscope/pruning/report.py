"""The record of a pruned run (``pruned_from.json``) and its Markdown report (``prune_report.md``).

The report's table puts, for the original, the pruned model before fine-tuning and after it:
parameters, forward multiply-adds of the message steps per batch, measured training and inference
molecules/s, test MSE and MAE, and the element-count baseline's test errors beside them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from irrepscope.tables import machine_description, markdown_table
from irrepscope.train.ownership import PRUNE_REPORT_FILE as REPORT_FILE
from irrepscope.train.ownership import PRUNED_FROM_FILE
from irrepscope.train.run_records import atomic_write_text

__all__ = ["HEADER", "PRUNED_FROM_FILE", "REPORT_FILE", "render", "summary_line", "table_rows",
           "write_record"]
HEADER = ["model", "SH orders", "hidden orders", "parameters", "message multiply-adds / batch (M)",
          "training mol/s", "inference mol/s", "test MSE (eV²)", "test MAE (eV)",
          "MSE / baseline"]


def _number(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}g}" if isinstance(value, float) else f"{value:,}"


def _ratio(mse: float | None, baseline: float | None) -> str:
    return "n/a" if mse is None or not baseline else f"{mse / baseline:.3g}"


def table_rows(record: dict[str, Any]) -> list[list[str]]:
    """Rows of the report's table (original, pruned before / after fine-tuning, baseline)."""
    errors, models = record["errors"], record["models"]
    base = (record.get("baseline") or {}).get("test_mse")
    before, after = record["orders_before"], record["orders_after"]
    epochs = record.get("epochs_trained", 0)

    def row(name: str, orders: dict, size: dict | None, err: dict | None) -> list[str]:
        size, err = size or {}, err or {}
        macs = size.get("multiply_adds_per_batch")
        return [name, str(orders["spherical_harmonics"]), str(orders["hidden"]),
                _number(size.get("parameters")), "" if macs is None else f"{macs / 1e6:.3g}",
                _number(size.get("train_mol_per_s"), 3),
                _number(size.get("inference_mol_per_s"), 3),
                _number(err.get("test_mse")), _number(err.get("test_mae")),
                _ratio(err.get("test_mse"), base)]

    rows = [row("original", before, models["original"], errors["original"])]
    if "hidden_only" in errors:
        hidden_only = {"spherical_harmonics": before["spherical_harmonics"],
                       "hidden": after["hidden"]}
        rows.append(row("hidden features pruned only (= ablation), before fine-tuning",
                        hidden_only, None, errors["hidden_only"]))
    rows.append(row("pruned, before fine-tuning", after, models["pruned"], errors["pruned"]))
    if epochs and "fine_tuned" in errors:
        rows.append(row(f"pruned, after {epochs} epoch(s) of fine-tuning", after,
                        models["pruned"], errors["fine_tuned"]))
    baseline = record.get("baseline") or {}
    rows.append(["composition baseline (element counts, least squares)", "", "", "", "", "",
                 "", _number(baseline.get("test_mse")), _number(baseline.get("test_mae")),
                 "1" if base else "n/a"])
    return rows


def _rule_text(record: dict[str, Any]) -> str:
    rule = record["rule"]
    text = f"Orders dropped: {record['dropped_orders']} ({rule['text']}"
    if rule["kind"] == "auto":
        numbers = ", ".join(f"l={l}: {float(v):.3g}"
                            for l, v in sorted(rule["ablation_rel_mse"].items(),
                                               key=lambda item: int(item[0])))
        text += f"; ablation_rel_mse {numbers}, {rule['numbers_from']}"
    where = ("the hidden features and the spherical harmonics"
             if record["from_spherical_harmonics"] else
             "the hidden features only: before fine-tuning the pruned model is exactly the "
             "original with these orders zeroed in every block")
    return text + f"), from {where}."


def render(record: dict[str, Any]) -> str:
    """The Markdown text of ``prune_report.md`` (the verdict first)."""
    from irrepscope.analysis.report_render import render_markdown
    from irrepscope.analysis.verdict_compare import pruned_verdict

    parts = [
        "# Pruned run",
        render_markdown([("verdict", pruned_verdict(record))], Path(".")).rstrip(),
        f"Source: {record['source_run']} ({record['source_checkpoint']} checkpoint).",
        _rule_text(record),
        markdown_table(HEADER, table_rows(record)),
        (f"Test errors over the {record['errors']['original']['test_count']} test molecules of "
         f"the source's split (the pruned run keeps it). Message multiply-adds: forward, of every "
         f"block's message step (radial MLP's last layer and tensor product, as the cost model "
         f"counts the formulation each block runs), mean over the measured batches. "
         f"{_speed_text(record.get('speed'))} Machine: {record.get('machine', 'n/a')}."),
    ]
    if record.get("unused_sh_orders"):
        parts.append(f"Spherical-harmonic orders {record['unused_sh_orders']} feed no path of "
                     f"the pruned model (neither their order nor their parity couples them to "
                     f"the hidden orders): they are computed without effect, and pruning with "
                     f"--drop-sh gives the same model without them.")
    parts.append(_scratch_text(record))
    if record.get("command"):
        parts.append(f"Written by:\n\n```\n{record['command']}\n```")
    return "\n\n".join(parts) + "\n"


def _speed_text(speed: dict[str, Any] | None) -> str:
    if speed is None:
        return "Molecules/s: not measured (--speed-batches 0)."
    return (f"Molecules/s: {speed['batches']} fixed batch(es) of {speed['batch_size']} training "
            f"molecules on {speed['device']} with {speed['threads']} thread(s), the two models "
            f"timed in turn, median of {speed['rounds']} rounds (training: forward, backward "
            f"and AdamW step; inference: forward).")


def _scratch_text(record: dict[str, Any]) -> str:
    """How to train the pruned architecture from scratch (same data, split and recipe)."""
    out, source = record["run_dir"], record.get("source_epochs_trained")
    epochs = record.get("epochs_trained", record["fine_tune_epochs"])
    total = "" if source is None else f" --set train.max_epochs={source + epochs}"
    budget = ("" if source is None else
              f" with the same total budget ({source} epochs of the original + {epochs} of "
              f"fine-tuning)")
    return (f"The same architecture trained from scratch on the same split{budget}:\n\n"
            f"```\nirrepscope train --config {out}/config.yaml{total} --run-dir "
            f"{out}_scratch\n```")


def summary_line(record: dict[str, Any]) -> str:
    """One line: test MSE of the original, the pruned model before and after fine-tuning, and
    the composition baseline's."""
    errors, epochs = record["errors"], record.get("epochs_trained", 0)
    text = (f"test MSE original {_number(errors['original']['test_mse'])} eV², pruned before "
            f"fine-tuning {_number(errors['pruned']['test_mse'])} eV²")
    if epochs and "fine_tuned" in errors:
        text += f", after {epochs} epoch(s) {_number(errors['fine_tuned']['test_mse'])} eV²"
    base = (record.get("baseline") or {}).get("test_mse")
    return text + (f"; composition baseline (element counts, least squares) "
                   f"{_number(base)} eV²" if base is not None else
                   "; composition baseline unavailable")


def write_record(out: Path, record: dict[str, Any]) -> Path:
    """Write ``pruned_from.json`` and ``prune_report.md`` into ``out``; returns the report."""
    record.setdefault("machine", machine_description())
    atomic_write_text(out / PRUNED_FROM_FILE, json.dumps(record, indent=2, default=float) + "\n")
    report = out / REPORT_FILE
    atomic_write_text(report, render(record))
    return report
