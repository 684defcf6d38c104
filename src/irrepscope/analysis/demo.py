"""The main job (`irrepscope demo`, `make demo`): train the paper's central comparison at CPU
size (L=[0,1,2] vs L=[0,3,4,5,6], h=16, configs/demo/), analyse both runs, compare them.
With several seeds, each config is trained once per seed (``OUT/<config>_s<seed>``) and the
comparison groups each config's seeds (mean ± std, paired t-test).

A run directory that already holds a finished run of the same config (test_metrics.json and
best.ckpt) is reused, an unfinished one of the same config is resumed, each with a note; one
of a different config is an error (nothing is overwritten).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from tqdm.auto import tqdm

from irrepscope.errors import ConfigError, RunDirError
from irrepscope.train.seeds import SeedSpec, seed_run_dirs

DEMO_CONFIGS = ("l012_h16", "l03456_h16")


def demo_config_dir() -> Path:
    """configs/demo of the current directory, else of the source checkout this package is in."""
    candidates = [Path.cwd() / "configs" / "demo",
                  Path(__file__).resolve().parents[3] / "configs" / "demo"]
    for path in candidates:
        if all((path / f"{name}.yaml").exists() for name in DEMO_CONFIGS):
            return path
    raise ConfigError(f"demo configs {', '.join(n + '.yaml' for n in DEMO_CONFIGS)} not found "
                      f"in {' or '.join(str(p) for p in candidates)}; run from the repository root")


def train_or_reuse(config_path: Path, run_dir: Path, overrides: Sequence[str] = ()
                   ) -> tuple[Path, str]:
    """Train ``config_path`` into ``run_dir`` unless a finished run of the same config is there.

    Returns (run_dir, note); the note says whether the run was trained, resumed or reused.
    """
    from irrepscope.train.config import config_differences, load_config
    from irrepscope.train.run import read_run_config, train

    config = load_config(config_path, overrides)
    if (run_dir / "config.yaml").exists():
        changed = config_differences(read_run_config(run_dir), config)
        if changed:
            raise RunDirError(f"{run_dir} holds a run of a different config ({', '.join(changed)}"
                              f" differ from {config_path}); remove it or pass another --out")
        if (run_dir / "test_metrics.json").exists() and (run_dir / "best.ckpt").exists():
            return run_dir, f"{run_dir.name}: reused the finished run in {run_dir} (same config)"
        if (run_dir / "last.ckpt").exists():
            train(config, run_dir, resume=True)
            return run_dir, f"{run_dir.name}: resumed the unfinished run in {run_dir}"
    train(config, run_dir)
    return run_dir, f"{run_dir.name}: trained from {config_path}"


def demo_runs(out: Path, overrides: Sequence[str] = (), seeds: SeedSpec = None,
              vary_split: bool = False) -> list[tuple[Path, Path, list[str]]]:
    """(config path, run dir, overrides) of every demo run: each config at each seed."""
    from irrepscope.train.config import load_config

    config_dir = demo_config_dir()
    runs = []
    for name in DEMO_CONFIGS:
        path = config_dir / f"{name}.yaml"
        config = load_config(path, overrides)
        runs += [(path, run_dir, [*overrides, *extra]) for run_dir, extra in
                 seed_run_dirs(Path(out), name, config, seeds, vary_split)]
    return runs


def run_demo(out: Path = Path("runs/demo"), overrides: Iterable[str] = (),
             progress: bool = True, seeds: SeedSpec = None, vary_split: bool = False) -> Path:
    """Train (or reuse), analyse and compare the demo runs under ``out``; returns the path of
    out/compare/report.html. ``overrides`` (``key=value``) apply to both configs; ``seeds``
    and ``vary_split`` (``irrepscope.train.seeds``) train each config several times."""
    from irrepscope.analysis.report import analyze_run, compare_runs

    out = Path(out)
    overrides = list(overrides)
    runs = demo_runs(out, overrides, seeds, vary_split)  # every seed validated before training
    start = time.perf_counter()
    notes, run_dirs = [], []
    stages = tqdm(total=2 * len(runs) + 1, desc="demo", disable=not progress, position=0)
    for config_path, run_dir, run_overrides in runs:
        stages.set_description(f"demo: train {run_dir.name}")
        t0 = time.perf_counter()
        run_dir, note = train_or_reuse(config_path, run_dir, run_overrides)
        notes.append(f"{note} ({time.perf_counter() - t0:.0f} s)")
        run_dirs.append(run_dir)
        stages.update()
    for run_dir in run_dirs:
        stages.set_description(f"demo: analyse {run_dir.name}")
        t0 = time.perf_counter()
        analyze_run(run_dir, progress=progress)
        notes.append(f"{run_dir.name}: analysed in {time.perf_counter() - t0:.0f} s")
        stages.update()
    stages.set_description("demo: compare")
    if overrides:
        notes.append(f"overrides applied to both configs: {' '.join(overrides)}")
    if seeds is not None:
        split = ("drawn from each seed (--vary-split)" if vary_split
                 else "fixed: every seed trains on its config's own split")
        notes.append(f"{len(runs) // len(DEMO_CONFIGS)} seed(s) per config; split {split}")
    notes.append(f"total demo wall time {time.perf_counter() - start:.0f} s")
    report = compare_runs(run_dirs, out / "compare", progress=progress, notes=notes)
    stages.update()
    stages.close()
    for note in notes:
        tqdm.write(note)
    return report
