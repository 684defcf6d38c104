"""`irrepscope bench demo`: wall time of `irrepscope demo` end to end, run as a user runs it.

Full mode times two runs into a fresh output folder: the first trains both configs (and builds
the processed data cache if it is missing), the second reuses the finished runs and the cache
and only re-analyses. Quick mode (a smoke test) shrinks the configs with ``--set`` overrides.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from irrepscope.bench.record import markdown_table, publish

QUICK_OVERRIDES = ("data.subset=120", "train.max_epochs=1", "model.hidden=4")


def _time_demo(out: Path, overrides: tuple[str, ...]) -> tuple[float, str]:
    """(wall seconds, printed report path) of one `irrepscope demo` subprocess."""
    command = [sys.executable, "-m", "irrepscope.cli", "demo", "--out", str(out)]
    for item in overrides:
        command += ["--set", item]
    start = time.perf_counter()
    # stderr (progress bars, notes) goes straight to the terminal; stdout ends with the path
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed with status {result.returncode} "
                           f"(its messages are above)")
    return wall, result.stdout.strip().splitlines()[-1]


def run(quick: bool = False, record: Path | None = None) -> str:
    """Time the demo (twice: fresh, then reusing runs and cache); record in ``record``."""
    overrides = QUICK_OVERRIDES if quick else ()
    with tempfile.TemporaryDirectory(prefix="irrepscope-demo-") as tmp:
        out = Path(tmp) / "demo"
        first, report = _time_demo(out, overrides)
        second, _ = _time_demo(out, overrides)
        exists = Path(report).exists()
    limit = 15 * 60
    rows = [["first run (trains both configs)", f"{first:.0f}",
             "yes" if first <= limit else "NO"],
            ["second run (reuses runs and data cache)", f"{second:.0f}",
             "yes" if second <= limit else "NO"]]
    body = (("Quick smoke run with " + ", ".join(QUICK_OVERRIDES) + ".\n\n" if quick else "")
            + markdown_table(["stage", "wall time (s)", "<= 15 min"], rows)
            + f"\n\nComparison report written: {'yes' if exists else 'no'}.")
    publish(body, record, "demo", quick)
    return body
