"""Several configs in a row, summarised as the paper's Table 1 (CSV and Markdown).

Each config trains into ``out_dir/<config stem>``, or with several seeds (``train.seeds``) into
``out_dir/<config stem>_s<seed>``, one run per seed; a run that already has ``last.ckpt`` is
resumed (a finished one only re-evaluates its test set), so an interrupted sweep can simply be
re-run. Table columns: L, epochs, h, parameters, test MSE (eV^2, the paper's "test error"),
test MAE (eV), the composition baseline's test MSE on the same split (eV^2,
``train.baseline``), wall time of training (s, summed over epochs, across resumes).
``sweep.csv`` has one row per run; ``sweep.md`` one row per config, with mean ± std over seeds
and each seed's test MSE when a config has several (``sweep_seeds.csv`` then holds the same).
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
from irrepscope.train.seed_stats import format_mean_std, format_per_seed, mean_std
from irrepscope.train.seeds import SeedSpec, seed_run_dirs

TABLE_COLUMNS = ("config", "seed", "orders", "epochs", "hidden", "parameters", "test_mse",
                 "test_mae", "baseline_test_mse", "wall_time_s", "run_dir")
SEED_COLUMNS = ("config", "orders", "epochs", "hidden", "parameters", "seeds", "num_seeds",
                "test_mse_mean", "test_mse_std", "test_mae_mean", "test_mae_std",
                "baseline_test_mse_mean", "baseline_test_mse_std", "wall_time_s_mean")


def table_row(run_dir: Path, config: RunConfig, name: str | None = None) -> dict[str, Any]:
    """One Table 1 row from a finished run directory (``name``: its config, default the dir)."""
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    return {"config": name or run_dir.name, "seed": config.seed,
            "orders": config.model.orders, "epochs": config.train.max_epochs,
            "hidden": config.model.hidden, "parameters": metrics["parameters"],
            "test_mse": metrics["test_mse"], "test_mae": metrics["test_mae"],
            "baseline_test_mse": metrics.get("baseline_test_mse"),
            "wall_time_s": metrics["wall_time_s"], "run_dir": str(run_dir)}


def group_rows(rows: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Rows of the same config together (its seeds), in the order configs first appear."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["config"], []).append(row)
    return list(groups.values())


def seed_summary(group: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One config's seeds summarised: mean and sample std (ddof=1) of its errors (SEED_COLUMNS)."""
    first = group[0]
    out = {key: first[key] for key in ("config", "orders", "epochs", "hidden", "parameters")}
    out.update(seeds=" ".join(str(r["seed"]) for r in group), num_seeds=len(group),
               wall_time_s_mean=mean_std([r["wall_time_s"] for r in group])[0])
    for key in ("test_mse", "test_mae", "baseline_test_mse"):
        values = [r[key] for r in group]
        out[f"{key}_mean"], out[f"{key}_std"] = (
            (None, None) if None in values else mean_std(values))
    return out


def write_table(rows: Sequence[dict[str, Any]], out_dir: Path) -> tuple[Path, ...]:
    """Write ``out_dir/sweep.csv`` (one row per run) and ``sweep.md`` (one per config), and
    ``sweep_seeds.csv`` when a config has several seeds; returns their paths."""
    csv_path, md_path = out_dir / "sweep.csv", out_dir / "sweep.md"
    atomic_write_text(csv_path, _csv_text(TABLE_COLUMNS, rows))
    groups = group_rows(rows)
    seeded = any(len(group) > 1 for group in groups)
    lines = ["| L | Epochs | h | # of parameters (M) | Test MSE (eV²) | Test MAE (eV) | "
             "Baseline test MSE (eV²) | Wall time |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    if seeded:
        lines = [lines[0].replace("Wall time |", "Wall time (mean per seed) | Seeds | "
                                  "Test MSE per seed (eV²) |"), lines[1] + "---:|---|"]
    for group in groups:
        first = group[0]
        bases = [r["baseline_test_mse"] for r in group]
        line = (f"| {first['orders']} | {first['epochs']} | {first['hidden']} | "
                f"{first['parameters'] / 1e6:.2f} | "
                f"{format_mean_std([r['test_mse'] for r in group])} | "
                f"{format_mean_std([r['test_mae'] for r in group])} | "
                f"{format_mean_std(bases[:1] if len(set(bases)) == 1 else bases)} | "
                f"{_duration(mean_std([r['wall_time_s'] for r in group])[0])} |")
        if seeded:
            line += (f" {len(group)} | "
                     f"{format_per_seed({r['seed']: r['test_mse'] for r in group})} |")
        lines.append(line)
    atomic_write_text(md_path, "\n".join(lines) + "\n")
    if not seeded:
        return csv_path, md_path
    seeds_path = out_dir / "sweep_seeds.csv"
    atomic_write_text(seeds_path, _csv_text(SEED_COLUMNS, [seed_summary(g) for g in groups]))
    return csv_path, md_path, seeds_path


def _csv_text(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "orders": " ".join(map(str, row["orders"]))})
    return buffer.getvalue()


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def run_sweep(configs: Sequence[str | Path], overrides: Iterable[str], out_dir: Path,
              train: Callable[..., Path], seeds: SeedSpec = None,
              vary_split: bool = False) -> list[Path]:
    """Train (or resume) every config at every seed, then write the table; returns run dirs +
    the table files. ``seeds``/``vary_split``: see ``irrepscope.train.seeds``."""
    overrides = list(overrides)
    loaded = [(Path(p), load_config(p, overrides)) for p in configs]  # validate all first
    stems = [p.stem for p, _ in loaded]
    if len(set(stems)) != len(stems):
        raise ConfigError(f"sweep configs must have distinct file names, got {stems}")
    runs = [(path, run_dir, load_config(path, [*overrides, *extra]))
            for path, config in loaded
            for run_dir, extra in seed_run_dirs(out_dir, path.stem, config, seeds, vary_split)]
    out_dir.mkdir(parents=True, exist_ok=True)
    run_dirs, rows = [], []
    for path, run_dir, config in runs:
        train(config, run_dir, resume=(run_dir / "last.ckpt").exists())
        run_dirs.append(run_dir)
        rows.append(table_row(run_dir, config, path.stem))
    return [*run_dirs, *write_table(rows, out_dir)]
