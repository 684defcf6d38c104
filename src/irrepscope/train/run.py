"""Training runs: the run directory, Lightning Trainer set-up, resume, and reading runs back.

Run directory layout (everything needed to reproduce and analyse a run)::

    config.yaml        resolved RunConfig (every default written out)
    split.npz          train/val/test indices into the data set (irrepscope.data.splits)
    metrics.csv        one row per epoch: train/val MSE (eV^2), MAE (eV, meV), throughput, time
    last.ckpt          Lightning checkpoint after the latest epoch (atomic write)
    best.ckpt          checkpoint of the epoch with the lowest val_mse (val_loss: other targets)
    versions.json      python, torch, e3nn, lightning, torch_geometric, numpy, irrepscope
    baseline.json      composition baseline: element-count least squares fitted on train
    targets.json       (runs with charges/dipole/quadrupole targets) loss scales and baselines
    test_metrics.json  test MSE/MAE of best.ckpt beside the baseline's, epoch, parameters, time
    logs/              Lightning's CSVLogger (per-step loss), TensorBoard when enabled
    pruned_from.json   (runs made by `irrepscope prune`) the source run, dropped orders, numbers
    prune_report.md    (runs made by `irrepscope prune`) the pruned run's report
    irreps_over_training.csv  (train.track_irreps) use of each l per block over the epochs
"""

from __future__ import annotations

import contextlib
import json
import logging
import platform
import sys
import warnings
from collections.abc import Iterable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.utilities.exceptions import SIGTERMException

from irrepscope.data.splits import Split, load_split
from irrepscope.errors import RunDirError
from irrepscope.model.gnn import EquivariantGNN, build_model
from irrepscope.model.info import check_model_fits
from irrepscope.train.baseline import (
    BASELINE_FILE,
    CompositionBaseline,
    baseline_metrics,
    composition_baseline,
    format_run_summary,
    read_baseline,
)
from irrepscope.train.callbacks import RunDirCallback
from irrepscope.train.config import RunConfig, load_config
from irrepscope.train.datamodule import SPLIT_FILE, QM9DataModule, cached_dataset
from irrepscope.train.ema import WeightAverage
from irrepscope.train.init_from import apply_init, init_for_run, read_init_record
from irrepscope.train.irrep_tracking import tracker_for
from irrepscope.train.module import EnergyModule, model_state_dict
from irrepscope.train.ownership import (
    CONFIG_FILE,
    TEST_METRICS_FILE,
    VERSIONS_FILE,
    check_run_dir,
    remove_requeue_checkpoints,
)
from irrepscope.train.run_records import (
    atomic_write_text,
    load_checkpoint,
    load_run_checkpoint,
    read_metrics,
    remove_stale_temporaries,
    repair_run_dir,
)
from irrepscope.train.seeds import SeedSpec
from irrepscope.train.stop_callback import StopAtBatchEnd
from irrepscope.train.stopping import Stopped, raise_if_signalled, stopped_in_training
from irrepscope.train.target_baseline import TargetBaselines, target_baseline_metrics

# Lightning chatter hidden during a run (messages, not errors): the run directory has the facts.
_QUIET = ("sync_dist", "does not have many workers", "The number of training batches",
          "Checkpoint directory", "GPU available but not used", "LOCAL_RANK", "srun",
          "LeafSpec", "weights_only")
_CHATTY_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                   "lightning.pytorch.trainer.connectors.signal_connector",  # "Received SIGTERM"
                   "lightning.pytorch.trainer.connectors.checkpoint_connector")


@contextlib.contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Hide Lightning's info messages and known-harmless warnings inside the block."""
    loggers = [logging.getLogger(name) for name in _CHATTY_LOGGERS]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        for text in _QUIET:
            warnings.filterwarnings("ignore", message=f".*{text}.*")
        for logger in loggers:
            logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def _is_rank_zero() -> bool:
    """True in the launching process (before the Trainer exists, from the launch environment)."""
    return getattr(rank_zero_only, "rank", 0) == 0


def read_run_config(run_dir: str | Path) -> RunConfig:
    """The ``RunConfig`` saved in ``run_dir/config.yaml``."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.exists():
        raise RunDirError(f"{path} is missing; `irrepscope train` writes it when a run starts")
    return load_config(path)


def write_run_config(config: RunConfig, run_dir: Path) -> None:
    """Write the resolved config as ``run_dir/config.yaml`` (atomic)."""
    atomic_write_text(run_dir / CONFIG_FILE, yaml.safe_dump(config.to_dict(), sort_keys=False))


def environment_versions() -> dict[str, str]:
    """Versions of the interpreter and the packages a run's numbers depend on."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("torch", "e3nn", "lightning", "torch_geometric", "numpy", "irrepscope"):
        try:
            out[package] = metadata.version(package.replace("_", "-"))
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    out["cuda"] = str(torch.version.cuda)
    return out


def make_trainer(config: RunConfig, run_dir: Path, callbacks: Sequence[L.Callback] = ()
                 ) -> L.Trainer:
    """A Lightning Trainer configured from ``config.train`` writing into ``run_dir``."""
    t = config.train
    loggers: list[Logger] = [CSVLogger(save_dir=str(run_dir), name="logs")]
    if t.tensorboard:
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(save_dir=str(run_dir), name="logs_tb"))
    strategy: Any = t.strategy
    if strategy == "ddp":  # buffers are constants: no broadcast, so eval needs no collectives
        strategy = DDPStrategy(broadcast_buffers=False)
    return L.Trainer(
        accelerator=t.accelerator, devices=t.devices, strategy=strategy, num_nodes=t.num_nodes,
        precision=t.precision, max_epochs=t.max_epochs, deterministic=t.deterministic,
        limit_train_batches=_limit(t.limit_train_batches),
        limit_val_batches=_limit(t.limit_val_batches),
        limit_test_batches=_limit(t.limit_test_batches), log_every_n_steps=t.log_every_n_steps,
        gradient_clip_val=t.gradient_clip_val, enable_progress_bar=t.progress_bar,
        enable_checkpointing=True, num_sanity_val_steps=0, use_distributed_sampler=False,
        enable_model_summary=False, default_root_dir=str(run_dir), logger=loggers,
        callbacks=[StopAtBatchEnd(), CompositionBaseline(run_dir), TargetBaselines(run_dir),
                   RunDirCallback(run_dir),
                   *([WeightAverage(t.ema_decay)] if t.ema_decay is not None else []),
                   *tracker_for(config), *callbacks],
    )


def _limit(value: int | float) -> int | float | None:
    """Lightning's limit_*_batches, None for 'all' (avoids its 'configured so 100%' notice)."""
    return None if value == 1.0 and isinstance(value, float) else value


def train(config: RunConfig, run_dir: str | Path, resume: bool = False,
          callbacks: Sequence[L.Callback] = (), init_from: str | Path | None = None,
          init_partial: bool = False, overwrite: bool = False) -> Path:
    """Train ``config`` into ``run_dir`` (or continue it from ``last.ckpt``); returns run_dir.

    ``init_from``: a run directory or checkpoint whose matching weights start the run
    (``irrepscope.train.init_from``; not re-applied on resume). A folder holding run files
    of another run is refused unless ``overwrite`` (``irrepscope.train.ownership``).
    """
    run_dir = Path(run_dir)
    check_run_dir(config, run_dir, resume, overwrite, clear=_is_rank_zero())
    check_model_fits(config.model)  # before anything is written
    init = init_for_run(config, run_dir, resume, init_from, init_partial, _is_rank_zero())
    start_from = _resume_checkpoint(run_dir) if resume else None
    if _is_rank_zero():
        run_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(run_dir)  # of a run killed before its first checkpoint
        removed = remove_requeue_checkpoints(run_dir)
        if removed:
            print(f"irrepscope: removed {', '.join(removed)} from {run_dir}: Lightning's "
                  f"mid-epoch checkpoints of a SLURM requeue; the run continues from last.ckpt",
                  file=sys.stderr)
        write_run_config(config, run_dir)
        atomic_write_text(run_dir / VERSIONS_FILE,
                          json.dumps(environment_versions(), indent=2) + "\n")
    try:
        _fit_and_test(config, run_dir, resume, callbacks, init, start_from)
    except (SIGTERMException, Stopped) as err:  # SIGTERMException alone would exit with 0
        raise stopped_in_training(run_dir, config.train.max_epochs, getattr(err, "signum", None),
                                  _is_rank_zero()) from None
    return run_dir


def _fit_and_test(config: RunConfig, run_dir: Path, resume: bool,
                  callbacks: Sequence[L.Callback], init: Any, start_from: Path | None) -> None:
    """The Lightning part of ``train``: fit, test best.ckpt, write test_metrics.json; a signal
    stops it at the next batch boundary (``train.stopping``)."""
    with _quiet_lightning():
        L.seed_everything(config.seed, workers=True, verbose=False)
        module = EnergyModule(config)
        if init is not None:
            apply_init(init, module.model, run_dir, announce=_is_rank_zero())
        if _is_rank_zero():
            m = config.model
            print(f"irrepscope: {'resuming' if resume else 'training'} L={m.orders} h={m.hidden} "
                  f"({sum(p.numel() for p in module.model.parameters()):,} parameters, "
                  f"{config.train.max_epochs} epochs) in {run_dir}", file=sys.stderr)
        datamodule = QM9DataModule(config, run_dir, progress=config.train.progress_bar)
        trainer = make_trainer(config, run_dir, callbacks)
        trainer.fit(module, datamodule=datamodule, weights_only=True,
                    ckpt_path=str(start_from) if start_from else None)
        raise_if_signalled()  # Lightning forgets a signal that came as fit was ending
        checkpoint, ckpt = load_run_checkpoint(run_dir, "best")
        trainer.test(module, datamodule=datamodule, ckpt_path=str(checkpoint), verbose=False,
                     weights_only=True)
        raise_if_signalled()
    if trainer.is_global_zero:
        metrics = _write_test_metrics(run_dir, module, checkpoint, ckpt)
        print(f"irrepscope: {run_dir}: {format_run_summary(metrics)}", file=sys.stderr)


def _resume_checkpoint(run_dir: Path) -> Path:
    """The checkpoint a resume starts from (last.ckpt, else best.ckpt when last is damaged),
    after rank 0 has repaired the run's records from it."""
    source, checkpoint = load_run_checkpoint(run_dir, "last")
    if _is_rank_zero():
        done = repair_run_dir(run_dir, source, checkpoint)
        if done:
            print(f"irrepscope: repaired {run_dir} before resuming: {'; '.join(done)}",
                  file=sys.stderr)
    return source


def _write_test_metrics(run_dir: Path, module: EnergyModule, checkpoint: Path,
                        ckpt: dict[str, Any]) -> dict[str, Any]:
    """``test_metrics.json``: test errors of ``checkpoint`` (loaded: ``ckpt``) plus size,
    training time and the composition baseline's errors on the same split."""
    rows = read_metrics(run_dir / "metrics.csv")
    metrics: dict[str, Any] = {k: v for k, v in module.epoch_metrics.items()
                               if k.startswith("test_") and k != "test_count"}
    if "test_count" in module.epoch_metrics:
        metrics["test_count"] = int(module.epoch_metrics["test_count"])
    metrics.update(checkpoint=checkpoint.name, epoch=int(ckpt["epoch"]),
                   global_step=int(ckpt["global_step"]),
                   parameters=sum(p.numel() for p in module.model.parameters()),
                   epochs_trained=len(rows),
                   wall_time_s=sum(r.get("epoch_time_s") or 0.0 for r in rows))
    metrics.update(baseline_metrics(run_dir))
    metrics.update(target_baseline_metrics(run_dir))
    metrics["init_from"] = (read_init_record(run_dir) or {}).get("source")
    atomic_write_text(run_dir / TEST_METRICS_FILE, json.dumps(metrics, indent=2) + "\n")
    return metrics


def read_test_metrics(run_dir: str | Path) -> dict[str, Any]:
    """``run_dir/test_metrics.json`` (test errors beside the composition baseline's)."""
    path = Path(run_dir) / TEST_METRICS_FILE
    if not path.exists():
        raise RunDirError(f"{path} is missing; `irrepscope train` writes it when training ends")
    return json.loads(path.read_text())


def train_from_config_file(config_path: str | Path, overrides: Iterable[str] = (),
                           run_dir: str | Path | None = None, resume: bool = False,
                           devices: int | None = None, strategy: str | None = None,
                           accelerator: str | None = None, init_from: str | Path | None = None,
                           init_partial: bool = False, overwrite: bool = False) -> Path:
    """``irrepscope train``: load config + overrides, train; run_dir defaults to runs/<stem>."""
    extra = [f"train.{k}={v}" for k, v in
             (("devices", devices), ("strategy", strategy), ("accelerator", accelerator))
             if v is not None]
    config = load_config(config_path, [*overrides, *extra])
    run_dir = Path(run_dir) if run_dir is not None else Path("runs") / Path(config_path).stem
    return train(config, run_dir, resume=resume, init_from=init_from, init_partial=init_partial,
                 overwrite=overwrite)


def load_trained_model(run_dir: str | Path, checkpoint: str | Path = "best"
                       ) -> tuple[EquivariantGNN, RunConfig]:
    """(model in eval mode on CPU with the checkpoint's weights and dtype, its RunConfig).

    ``checkpoint``: ``"best"``, ``"last"`` (the other one is used, with a note on stderr, when
    that file is damaged) or a path to a ``.ckpt`` file.
    """
    model, config, _ = load_trained_checkpoint(run_dir, checkpoint)
    return model, config


def load_trained_checkpoint(run_dir: str | Path, checkpoint: str | Path = "best"
                            ) -> tuple[EquivariantGNN, RunConfig, Path]:
    """``load_trained_model`` and the path of the checkpoint it loaded."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    if str(checkpoint) in ("best", "last"):
        loaded, ckpt = load_run_checkpoint(run_dir, str(checkpoint))
    else:
        loaded, ckpt = Path(checkpoint), load_checkpoint(checkpoint)
    state = model_state_dict(ckpt)
    model = build_model(config)
    dtypes = {v.dtype for v in state.values() if v.is_floating_point()}
    if len(dtypes) == 1:
        model = model.to(dtypes.pop())
    model.load_state_dict(state)
    return model.eval(), config, loaded


def load_run_split(run_dir: str | Path) -> Split:
    """The train/val/test split saved in ``run_dir/split.npz``."""
    path = Path(run_dir) / SPLIT_FILE
    if not path.exists():
        raise RunDirError(f"{path} is missing; `irrepscope train` writes it when a run starts")
    return load_split(path)


def load_run_dataset(run_dir: str | Path, progress: bool = True) -> Any:
    """The data set (``MoleculeGraphs``) a run was trained on, as its config.yaml describes."""
    return cached_dataset(read_run_config(run_dir), progress=progress)


def run_baseline(run_dir: str | Path, dataset: Any = None) -> dict[str, Any]:
    """The composition baseline of a run: baseline.json, computed (and written) first if it is
    missing (``dataset``: the run's data set when already loaded)."""
    summary = read_baseline(Path(run_dir))
    if summary is not None:
        return summary
    config = read_run_config(run_dir)
    dataset = load_run_dataset(run_dir, progress=False) if dataset is None else dataset
    _, summary = composition_baseline(dataset, load_run_split(run_dir),
                                      config.model.num_elements)
    atomic_write_text(Path(run_dir) / BASELINE_FILE, json.dumps(summary, indent=2) + "\n")
    return summary


def sweep(configs: Sequence[str | Path], overrides: Iterable[str] = (),
          out_dir: str | Path = Path("runs/sweep"), seeds: SeedSpec = None,
          vary_split: bool = False) -> list[Path]:
    """Train each config into ``out_dir/<stem>`` (several ``seeds``: ``<stem>_s<seed>``, see
    ``train.seeds``); returns run dirs, then the table files (``train.sweep.write_table``)."""
    from irrepscope.train.sweep import run_sweep

    return run_sweep(configs, overrides, Path(out_dir), train, seeds=seeds,
                     vary_split=vary_split)
