"""Several configs in a row, summarised as the paper's Table 1 (CSV and Markdown).

Each config trains into ``out_dir/<config stem>``; a run that already has ``last.ckpt`` is resumed
(a finished one only re-evaluates its test set), so an interrupted sweep can simply be re-run.
Table columns: L, epochs, h, parameters, test MSE (eV^2, the paper's "test error"), test MAE
(eV), the composition baseline's test MSE on the same split (eV^2, ``train.baseline``), wall
time of training (s, summed over epochs, across resumes).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from irrepscope.errors import ConfigError
from irrepscope.train.config import RunConfig, load_config
from irrepscope.train.run_records import atomic_write_text

TABLE_COLUMNS = ("orders", "epochs", "hidden", "parameters", "test_mse", "test_mae",
                 "baseline_test_mse", "wall_time_s", "run_dir")


def table_row(run_dir: Path, config: RunConfig) -> dict[str, Any]:
    """One Table 1 row from a finished run directory."""
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    return {"orders": config.model.orders, "epochs": config.train.max_epochs,
            "hidden": config.model.hidden, "parameters": metrics["parameters"],
            "test_mse": metrics["test_mse"], "test_mae": metrics["test_mae"],
            "baseline_test_mse": metrics.get("baseline_test_mse"),
            "wall_time_s": metrics["wall_time_s"], "run_dir": str(run_dir)}


def write_table(rows: Sequence[dict[str, Any]], out_dir: Path) -> tuple[Path, Path]:
    """Write ``out_dir/sweep.csv`` and ``out_dir/sweep.md``; returns their paths."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=TABLE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "orders": " ".join(map(str, row["orders"]))})
    csv_path, md_path = out_dir / "sweep.csv", out_dir / "sweep.md"
    atomic_write_text(csv_path, buffer.getvalue())
    lines = ["| L | Epochs | h | # of parameters (M) | Test MSE (eV²) | Test MAE (eV) | "
             "Baseline test MSE (eV²) | Wall time |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        base = row["baseline_test_mse"]
        lines.append(
            f"| {row['orders']} | {row['epochs']} | {row['hidden']} | "
            f"{row['parameters'] / 1e6:.2f} | {row['test_mse']:.4g} | {row['test_mae']:.4g} | "
            f"{'n/a' if base is None else f'{base:.4g}'} | {_duration(row['wall_time_s'])} |")
    atomic_write_text(md_path, "\n".join(lines) + "\n")
    return csv_path, md_path


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def run_sweep(configs: Sequence[str | Path], overrides: Iterable[str], out_dir: Path,
              train: Callable[..., Path]) -> list[Path]:
    """Train (or resume) every config, then write the table; returns run dirs + [csv, md]."""
    overrides = list(overrides)
    loaded = [(Path(p), load_config(p, overrides)) for p in configs]  # validate all first
    stems = [p.stem for p, _ in loaded]
    if len(set(stems)) != len(stems):
        raise ConfigError(f"sweep configs must have distinct file names, got {stems}")
    out_dir.mkdir(parents=True, exist_ok=True)
    run_dirs, rows = [], []
    for path, config in loaded:
        run_dir = out_dir / path.stem
        train(config, run_dir, resume=(run_dir / "last.ckpt").exists())
        run_dirs.append(run_dir)
        rows.append(table_row(run_dir, config))
    return [*run_dirs, *write_table(rows, out_dir)]
