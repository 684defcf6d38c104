"""Whether a command may write a run into a folder: never over run files that are not its own.

A folder holding any of ``RUN_FILES`` is written into only when

- it holds the same run: its ``config.yaml`` equals the new config except in
  ``config.RESUMABLE_KEYS``. ``--resume`` then continues it from ``last.ckpt``; without
  ``--resume`` a run that stopped before its first epoch (no ``last.ckpt``) starts over, and a
  run with ``last.ckpt`` is refused (pass ``--resume``);
- or the user passes ``--overwrite``: the run files there are deleted first (other files stay).

``hpc_ckpt_<n>.ckpt`` files are Lightning's: under SLURM its auto-requeue (``--signal=SIGUSR1``)
saves one mid-epoch before requeueing the job, and a fit without a checkpoint path would start
from it. A run never does (a resume starts from ``last.ckpt``, exactly), so they count as run
files and ``train`` removes them when it starts.

Anything else is one ``RunDirError`` listing the run files that are there and the ways out.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from irrepscope.errors import ConfigError, IrrepscopeError, RunDirError
from irrepscope.train.config import RESUMABLE_KEYS, RunConfig, config_differences, load_config
from irrepscope.train.run_records import METRICS_FILE, TRACKING_FILE

CONFIG_FILE = "config.yaml"
VERSIONS_FILE = "versions.json"
TEST_METRICS_FILE = "test_metrics.json"
PRUNED_FROM_FILE = "pruned_from.json"  # written by `irrepscope prune` (irrepscope.pruning)
PRUNE_REPORT_FILE = "prune_report.md"
# Everything a run command writes into a run directory (files and folders).
RUN_FILES = (CONFIG_FILE, "split.npz", METRICS_FILE, "last.ckpt", "best.ckpt", VERSIONS_FILE,
             "baseline.json", "targets.json", "init_from.json", TEST_METRICS_FILE,
             PRUNED_FROM_FILE, PRUNE_REPORT_FILE, TRACKING_FILE, "logs", "logs_tb", "analysis")


REQUEUE_CHECKPOINTS = "hpc_ckpt_*.ckpt"  # Lightning's SLURM requeue checkpoints


def run_files(folder: Path) -> list[str]:
    """The names of ``RUN_FILES`` and requeue checkpoints present in ``folder``."""
    folder = Path(folder)
    requeue = sorted(p.name for p in folder.glob(REQUEUE_CHECKPOINTS)) if folder.is_dir() else []
    return [name for name in RUN_FILES if (folder / name).exists()] + requeue


def remove_requeue_checkpoints(folder: Path) -> list[str]:
    """Delete Lightning's ``hpc_ckpt_<n>.ckpt`` files in ``folder``; returns their names."""
    removed = sorted(Path(folder).glob(REQUEUE_CHECKPOINTS))
    for path in removed:
        path.unlink()
    return [p.name for p in removed]


def clear_run_files(folder: Path) -> list[str]:
    """Delete the run files of ``folder`` (``--overwrite``); returns their names."""
    names = run_files(folder)
    for name in names:
        path = Path(folder) / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    return names


def changed_keys(config: RunConfig, run_dir: Path) -> list[str] | None:
    """Keys (outside ``RESUMABLE_KEYS``) in which ``config`` differs from the run's
    config.yaml; None when the run has no readable config.yaml."""
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        return None
    try:
        saved = load_config(path)
    except IrrepscopeError:
        return None
    return [k for k in config_differences(saved, config) if k not in RESUMABLE_KEYS]


def _listed(names: list[str]) -> str:
    return ", ".join(names)


def check_run_dir(config: RunConfig, run_dir: Path, resume: bool, overwrite: bool = False,
                  clear: bool = True) -> None:
    """Refuse to write ``config``'s run into ``run_dir`` over run files that are not its own
    (see the module text); with ``overwrite`` delete them (when ``clear``: rank 0 only)."""
    run_dir = Path(run_dir)
    if overwrite:
        if resume:
            raise ConfigError("--overwrite starts the run afresh and --resume continues it; "
                              "give one of them")
        if clear:
            clear_run_files(run_dir)
        return
    present = run_files(run_dir)
    last = run_dir / "last.ckpt"
    if resume and not last.exists() and not (run_dir / "best.ckpt").exists():
        what = (f"{last} is missing: the run there stopped before its first epoch finished"
                if present else f"there is no run in {run_dir}")
        raise RunDirError(f"cannot resume: {what}; run the same command without --resume to "
                          f"start it")
    if not present:
        return
    changed = changed_keys(config, run_dir)
    if changed is None:
        raise RunDirError(f"{run_dir} holds {_listed(present)} but no readable {CONFIG_FILE}, "
                          f"so they are not from a run of this config; choose another folder, "
                          f"or pass --overwrite to replace them")
    if changed and resume:
        raise ConfigError(f"cannot resume {run_dir} with a different config: "
                          f"{_listed(changed)} changed (only "
                          f"{_listed(sorted(RESUMABLE_KEYS))} may change)")
    if changed:
        raise RunDirError(f"{run_dir} holds a run of a different config ({_listed(changed)} "
                          f"differ; files: {_listed(present)}); choose another folder, or pass "
                          f"--overwrite to replace it")
    if not resume and last.exists():
        raise RunDirError(f"{run_dir} already holds a run (last.ckpt); pass --resume to "
                          f"continue it, choose another folder, or pass --overwrite to start it "
                          f"afresh")
