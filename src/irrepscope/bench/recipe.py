"""`irrepscope bench recipe`: what each part of the demo's training recipe buys, in test MSE.

Both demo configs (configs/demo/) are trained four times at the demo's budget, the same seed
(split and initial weights) every time, adding one part per line:

1. the paper's recipe: global label mean/std, random readout, AdamW at a constant lr 1e-3;
2. + element references fitted on the training split, readout initialised to zero;
3. + lr schedule: linear warm-up (100 steps) to 3e-3, cosine decay to 0;
4. + EMA of the weights (decay 0.99): the demo configs as they are.

Each line stands beside the composition baseline of the same split. Runs go to
``runs/bench-recipe/<config>/<recipe>``; finished ones are reused, so an interrupted study
continues where it stopped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from irrepscope.bench.record import load_average, load_note, markdown_table, publish

PAPER = ("model.energy_reference=global_mean_std", "model.readout_init=random",
         "train.lr=0.001", "train.lr_schedule=constant", "train.warmup_steps=0",
         "train.ema_decay=null")
REFERENCES = ("model.energy_reference=element_least_squares", "model.readout_init=zero")
SCHEDULE = ("train.lr=0.003", "train.lr_schedule=warmup_cosine", "train.warmup_steps=100")
# (name, overrides on top of the demo config); each line keeps the parts of the lines above
RECIPES = (
    ("paper (global mean/std, constant lr 1e-3)", PAPER),
    ("+ element references, zero readout", (*PAPER, *REFERENCES)),
    ("+ warm-up + cosine lr (peak 3e-3)", (*PAPER, *REFERENCES, *SCHEDULE)),
    ("+ EMA 0.99 (the demo recipe)", ()),
)
QUICK_OVERRIDES = ("data.subset=120", "train.max_epochs=1", "model.hidden=4",
                   "model.num_layers=1")
QUICK_WARMUP = "train.warmup_steps=1"  # the quick run has 3 steps


def _overrides(recipe: tuple[str, ...], quick: bool) -> list[str]:
    if not quick:
        return list(recipe)
    warmups = [o for o in recipe if o.startswith("train.warmup_steps=")]
    keeps_warmup = not warmups or warmups[-1] != "train.warmup_steps=0"  # the demo's is 100
    return [*QUICK_OVERRIDES, *recipe, *([QUICK_WARMUP] if keeps_warmup else [])]


def recipe_jobs(quick: bool = False, out: Path = Path("runs/bench-recipe")
                ) -> list[tuple[str, str, Path, Path, list[str]]]:
    """(config name, recipe label, config file, run dir, overrides) of every training."""
    from irrepscope.analysis.demo import DEMO_CONFIGS, demo_config_dir

    out = Path(out) / ("quick" if quick else "full")
    config_dir = demo_config_dir()
    return [(name, label, config_dir / f"{name}.yaml", out / name / f"recipe{index}",
             [*_overrides(recipe, quick), "train.progress_bar=false"])
            for name in DEMO_CONFIGS for index, (label, recipe) in enumerate(RECIPES)]


def run(quick: bool = False, record: Path | None = None,
        out: Path = Path("runs/bench-recipe")) -> str:
    """Train (or reuse) the 2 x 4 runs under ``out``; record the table in ``record``."""
    from irrepscope.analysis.demo import train_or_reuse

    load_start = load_average()
    for name, label, config_path, run_dir, overrides in recipe_jobs(quick, out):
        start = time.perf_counter()
        train_or_reuse(config_path, run_dir, overrides)
        print(f"bench recipe: {name} {label}: {time.perf_counter() - start:.0f} s", flush=True)
    return record_table(quick, record, out, load_start)


def record_table(quick: bool, record: Path | None, out: Path, load_start: float) -> str:
    """Table of every line from the runs under ``out`` (unfinished lines say so); publish it."""
    rows = [_row(name, label, run_dir) for name, label, _, run_dir, _ in recipe_jobs(quick, out)]
    header = ["config", "recipe", "test MSE (eV²)", "test MAE (eV)", "baseline test MSE (eV²)",
              "MSE / baseline", "training time (s)"]
    missing = sum(row[2] == "not finished" for row in rows)
    body = ((f"Quick smoke run with {', '.join(QUICK_OVERRIDES)}.\n\n" if quick else "")
            + "Same seed (split and initial weights) on every line; each line adds one part to "
            "the line above. Baseline: least squares of the energy on the element counts, "
            "fitted on the same training split. Training time is the sum of the epochs' wall "
            "times. " + load_note(load_start, load_average())
            + (f" {missing} of the {len(rows)} runs did not finish; rerunning the command "
               f"trains them (finished runs are reused)." if missing else "") + "\n\n"
            + markdown_table(header, rows))
    publish(body, record, "recipe", quick)
    return body


def _row(config: str, label: str, run_dir: Path) -> list[object]:
    path = run_dir / "test_metrics.json"
    if not path.exists():
        return [config, label, "not finished", "", "", "", ""]
    metrics = json.loads(path.read_text())
    mse, base = metrics["test_mse"], metrics.get("baseline_test_mse")
    ratio = f"{mse / base:.3f}" if base else "n/a"
    return [config, label, f"{mse:.4f}", f"{metrics['test_mae']:.4f}",
            f"{base:.4f}" if base else "n/a", ratio, f"{metrics['wall_time_s']:.0f}"]
