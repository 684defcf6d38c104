"""Several analysed runs' utilization numbers side by side, and where each run's weights began.

One table per number (variance share, ablation, energy and NSPS probes), one row per order l,
one column per run (last block of each run; an l a run does not have is shown as '-'). Runs
started from another run's weights (``irrepscope train --init-from``) are named with their
source, by its name in the comparison when it is one of the compared runs.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from irrepscope.files import atomic_output
from irrepscope.train.init_from import describe_init, read_init_record

NUMBERS = {
    "variance_share": "share of the embedding's variance in l's raw columns",
    "ablation_rel_mse": "relative change of test MSE when l is zeroed inside every block",
    "probe_r2_energy": "cross-validated ridge R² of the energy from l's invariant features",
    "probe_r2_nsps": "cross-validated ridge R² of NSPS from l's invariant features",
}
ABSENT = "-"
CSV_FILE = "utilization_side_by_side.csv"


def _cell(value: Any) -> str:
    if value is None:
        return ABSENT
    value = float(value)
    return "n/a" if math.isnan(value) else f"{value:.4g}"


def last_block_rows(summary: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """{l: utilization row} of a run summary's last block."""
    return {int(r["l"]): r for r in summary["table"] if r["block"] == summary["last_block"]}


def side_by_side(names: Sequence[str], summaries: Sequence[dict[str, Any]], number: str
                 ) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of one number: a row per l (union over runs), a column per run."""
    per_run = [last_block_rows(s) for s in summaries]
    orders = sorted({l for rows in per_run for l in rows})
    rows = [[f"l={l}", *(_cell(rows[l][number]) if l in rows else ABSENT for rows in per_run)]
            for l in orders]
    return ["l", *names], rows


def side_by_side_blocks(names: Sequence[str], summaries: Sequence[dict[str, Any]]
                        ) -> list[tuple[Any, ...]]:
    """Report blocks: a heading, then for each number its meaning and its table."""
    blocks: list[tuple[Any, ...]] = [
        ("h2", "Utilization per l, side by side (last block)"),
        ("p", f"One table per number, one column per run; '{ABSENT}': the run has no such l.")]
    for number, meaning in NUMBERS.items():
        header, rows = side_by_side(names, summaries, number)
        blocks += [("p", f"{number}: {meaning}."), ("table", header, rows)]
    return blocks


def write_side_by_side_csv(path: Path, names: Sequence[str],
                           summaries: Sequence[dict[str, Any]]) -> Path:
    """CSV with columns number, l, then one per run (the tables of ``side_by_side_blocks``)."""
    with atomic_output(path, "w") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["number", "l", *names])
        for number in NUMBERS:
            _, rows = side_by_side(names, summaries, number)
            writer.writerows([[number, row[0].removeprefix("l="), *row[1:]] for row in rows])
    return path


def initialisation_blocks(names: Sequence[str], run_dirs: Sequence[Path]
                          ) -> list[tuple[Any, ...]]:
    """A section saying which run was started from which weights (empty when none was)."""
    records = [read_init_record(run_dir) for run_dir in run_dirs]
    if not any(records):
        return []
    name_of = {str(Path(d).resolve()): name for name, d in zip(names, run_dirs, strict=True)}
    items = [f"{name}: " + (describe_init(record, name_of) if record else
                            "trained from scratch (initial weights from its seed)")
             for name, record in zip(names, records, strict=True)]
    return [("h2", "Initial weights"), ("ul", items)]
