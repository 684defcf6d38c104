"""`irrepscope bench demo`: wall time of `irrepscope demo` end to end, run as a user runs it.

Full mode times two runs into a fresh output folder: the first trains both configs (and builds
the processed data cache if it is missing), the second reuses the finished runs and the cache
and only re-analyses. Quick mode (a smoke test) shrinks the configs with ``--set`` overrides.
Each demo model's test MSE/MAE is recorded beside the composition baseline of its split.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from irrepscope.bench.record import load_average, load_note, markdown_table, publish

QUICK_OVERRIDES = ("data.subset=120", "train.max_epochs=1", "model.hidden=4",
                   "train.warmup_steps=1")
TARGET_RATIO = 0.15  # the demo models' test MSE must be at most this x the baseline's


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


def _accuracy_table(out: Path) -> str:
    """Markdown table of each demo run's test MSE/MAE and its baseline's, from out/<run>."""
    from irrepscope.analysis.demo import DEMO_CONFIGS

    rows = []
    for name in DEMO_CONFIGS:
        m = json.loads((out / name / "test_metrics.json").read_text())
        ratio = m["test_mse"] / m["baseline_test_mse"]
        rows.append([name, f"{m['test_mse']:.4f}", f"{m['test_mae']:.4f}",
                     f"{m['baseline_test_mse']:.4f}", f"{m['baseline_test_mae']:.4f}",
                     f"{ratio:.3f}", "yes" if ratio <= TARGET_RATIO else "NO"])
    return markdown_table(["model", "test MSE (eV²)", "test MAE (eV)", "baseline MSE (eV²)",
                           "baseline MAE (eV)", "MSE / baseline",
                           f"<= {TARGET_RATIO}x"], rows)


def run(quick: bool = False, record: Path | None = None) -> str:
    """Time the demo (twice: fresh, then reusing runs and cache); record in ``record``."""
    overrides = QUICK_OVERRIDES if quick else ()
    load_start = load_average()
    with tempfile.TemporaryDirectory(prefix="irrepscope-demo-") as tmp:
        out = Path(tmp) / "demo"
        first, report = _time_demo(out, overrides)
        second, _ = _time_demo(out, overrides)
        exists = Path(report).exists()
        accuracy = _accuracy_table(out)
    limit = 15 * 60
    rows = [["first run (trains both configs)", f"{first:.0f}",
             "yes" if first <= limit else "NO"],
            ["second run (reuses runs and data cache)", f"{second:.0f}",
             "yes" if second <= limit else "NO"]]
    body = (("Quick smoke run with " + ", ".join(QUICK_OVERRIDES) + ".\n\n" if quick else "")
            + markdown_table(["stage", "wall time (s)", "<= 15 min"], rows)
            + f"\n\nComparison report written: {'yes' if exists else 'no'}. "
            + load_note(load_start, load_average()) + "\n\n"
            + f"Test errors of the demo models (best.ckpt) beside the composition baseline "
            f"(element-count least squares fitted on the same training split); target: MSE "
            f"at most {TARGET_RATIO}x the baseline's.\n\n" + accuracy)
    publish(body, record, "demo", quick)
    return body
