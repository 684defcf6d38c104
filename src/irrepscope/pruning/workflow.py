"""`irrepscope prune RUN --out NEW_RUN`: a smaller model from a trained run, as a new run.

Steps: the run's best checkpoint -> the orders to drop (a list, or the rule of
``pruning.orders``) -> ``model.prune.prune_model`` (remaining weights copied path by path) ->
test errors of the original and of the pruned model before fine-tuning, both models'
parameters, message multiply-adds and measured molecules/s (``train.speed``: interleaved, same
batches) -> fine-tuning for ``epochs`` with ``train.run.train`` (the run's recipe, any
``train.*`` changed with overrides, starting from the pruned weights; ``epochs=0`` writes the
pruned model itself as the run's checkpoint) -> ``pruned_from.json`` and ``prune_report.md``.

The new run directory is a normal one (config.yaml with the pruned model, split.npz of the
source, checkpoints, metrics.csv, baseline.json, test_metrics.json): `analyze`, `compare`,
`predict` and `model info --run` read it as any other.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch

from irrepscope.errors import ConfigError, RunDirError
from irrepscope.files import atomic_copy
from irrepscope.model.gnn import EquivariantGNN, build_model
from irrepscope.model.prune import pruned_config, pruned_state_dict, unused_sh_orders
from irrepscope.pruning.orders import AUTO_THRESHOLD, auto_drop
from irrepscope.pruning.report import PRUNED_FROM_FILE, summary_line, write_record
from irrepscope.train.baseline import BASELINE_FILE
from irrepscope.train.config import RunConfig, config_differences, load_config
from irrepscope.train.datamodule import SPLIT_FILE
from irrepscope.train.module import evaluate
from irrepscope.train.ownership import clear_run_files, run_files
from irrepscope.train.run import (
    TEST_METRICS_FILE,
    VERSIONS_FILE,
    environment_versions,
    load_run_dataset,
    load_run_split,
    load_trained_checkpoint,
    read_run_config,
    read_test_metrics,
    run_baseline,
    train,
    write_run_config,
)
from irrepscope.train.run_records import (
    METRICS_FILE,
    RECORD_KEY,
    atomic_write_bytes,
    atomic_write_text,
    checkpoint_bytes,
    write_metrics,
)
from irrepscope.train.speed import multiply_adds_per_batch, throughput

# Settings a pruned run may change besides train.* and seed: how the model runs and where the
# data lies, never which weights it has or which molecules it sees.
FREE_KEYS = frozenset({"model.sh_backend", "model.tensor_product", "model.aggregate",
                       "model.irrep_dropout", "data.num_workers", "data.data_dir",
                       "data.qm9_dir"})
ONE_PROCESS = ("prune fine-tunes in one process: train.devices and train.num_nodes must be 1 "
               "and train.strategy auto (a multi-process launch would repeat the pruning in "
               "every process)")
SPEED_BATCHES = 8
SPEED_ROUNDS = 3


@dataclass
class Source:
    """The trained run being pruned: its model (eval mode, CPU), config, data and split."""

    run_dir: Path
    checkpoint: str
    model: EquivariantGNN
    config: RunConfig
    dataset: Any
    split: Any

    def graphs(self, stage: str) -> list[Any]:
        """The molecules of one split (``train``, ``val`` or ``test``)."""
        return [self.dataset[int(i)] for i in getattr(self.split, stage)]


def open_source(run_dir: str | Path, checkpoint: str = "best", progress: bool = False) -> Source:
    """The run to prune; ``RunDirError`` when it is missing or has no finished checkpoint."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir} is not a run directory; pass the folder `irrepscope "
                          f"train` wrote (with config.yaml and best.ckpt)")
    if checkpoint in ("best", "last") and not any(
            (run_dir / name).exists() for name in ("best.ckpt", "last.ckpt")):
        raise RunDirError(f"{run_dir} has no finished checkpoint (best.ckpt and last.ckpt are "
                          f"written at the end of every training epoch); let its training "
                          f"finish an epoch, or train it first")
    model, config, loaded = load_trained_checkpoint(run_dir, checkpoint)
    name = loaded.stem if loaded.parent == run_dir and loaded.stem in ("best", "last") \
        else str(loaded)  # the one loaded: last when best.ckpt is missing or damaged
    return Source(run_dir, name, model, config, load_run_dataset(run_dir, progress),
                  load_run_split(run_dir))


def pruned_run_config(source: RunConfig, model: Any, epochs: int,
                      overrides: Iterable[str] = ()) -> RunConfig:
    """The source's config with the pruned ``model`` config, ``epochs`` (when > 0), the source's
    split seed pinned, and ``overrides`` (``train.*``, ``seed`` and ``FREE_KEYS`` only)."""
    values = source.to_dict()
    values["model"] = model.to_dict()
    values["data"]["split_seed"] = source.split_seed  # a changed --set seed keeps the split
    values["train"].update(devices=1, strategy="auto", num_nodes=1)  # see ONE_PROCESS
    if epochs > 0:
        values["train"]["max_epochs"] = epochs
    config = load_config(values, overrides)
    fixed = [key for key in config_differences(load_config(values), config)
             if key.startswith(("model.", "data.")) and key not in FREE_KEYS]
    if fixed:
        raise ConfigError(f"prune --set cannot change {', '.join(fixed)}: the pruned model keeps "
                          f"the original's weights and molecules; set train.*, seed or "
                          f"{', '.join(sorted(FREE_KEYS))}")
    t = config.train
    if t.devices != 1 or t.num_nodes != 1 or t.strategy not in ("auto", "single_device"):
        raise ConfigError(ONE_PROCESS)
    return config


class StartFrom(L.Callback):
    """Loads given weights into the module's model when fitting starts (before the first step;
    a resumed run's checkpoint replaces them afterwards)."""

    def __init__(self, state: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.state = state

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """After the baseline callback's set-up (the weights include the energy reference)."""
        if stage == "fit":
            pl_module.model.load_state_dict(self.state)


def _speed_batches(source: Source, batch_size: int, count: int) -> list[Any]:
    from torch_geometric.data import Batch

    graphs = [source.dataset[int(i)] for i in source.split.train[:count * batch_size]]
    return [Batch.from_data_list(graphs[k:k + batch_size])
            for k in range(0, len(graphs), batch_size)]


def _speed_device(config: RunConfig) -> str:
    accelerator = config.train.accelerator
    wants_gpu = accelerator in ("gpu", "cuda") or accelerator == "auto"
    return "cuda" if wants_gpu and torch.cuda.is_available() else "cpu"


def _errors(model: torch.nn.Module, graphs: Sequence[Any], batch_size: int) -> dict[str, float]:
    metrics = evaluate(model, graphs, batch_size)
    return {"test_mse": metrics["mse"], "test_mae": metrics["mae"], "test_count": metrics["count"]}


def measure(source: Source, pruned: EquivariantGNN, hidden_only: EquivariantGNN | None,
            config: RunConfig, speed_batches: int = SPEED_BATCHES,
            rounds: int = SPEED_ROUNDS) -> dict[str, Any]:
    """Test errors, sizes, multiply-adds and molecules/s of the original and the pruned model
    (and of the hidden-only pruning's test errors when the SH were pruned too).

    ``speed_batches`` = 0 leaves the molecules/s out (multiply-adds are then counted on one
    batch)."""
    batch_size = config.train.eval_batch_size or config.train.batch_size
    test = source.graphs("test")
    models = {"original": source.model, "pruned": pruned}
    errors = {name: _errors(model, test, batch_size) for name, model in models.items()}
    if hidden_only is not None:
        errors["hidden_only"] = _errors(hidden_only, test, batch_size)
    batches = _speed_batches(source, config.train.batch_size, max(speed_batches, 1))
    device = _speed_device(config)
    speed = throughput(models, batches, rounds, device) if speed_batches > 0 else {}
    sizes = {name: {"parameters": sum(p.numel() for p in model.parameters()),
                    "multiply_adds_per_batch": multiply_adds_per_batch(model, batches),
                    **speed.get(name, {})} for name, model in models.items()}
    timing = {"device": device, "threads": torch.get_num_threads(), "batches": len(batches),
              "batch_size": config.train.batch_size, "rounds": rounds} if speed else None
    return {"errors": errors, "models": sizes, "speed": timing}


def write_untrained_run(out: Path, config: RunConfig, model: EquivariantGNN, source: Source,
                        errors: dict[str, float]) -> None:
    """A run directory whose checkpoints hold ``model`` as it is (no fine-tuning epoch)."""
    out.mkdir(parents=True, exist_ok=True)
    write_run_config(config, out)
    atomic_write_text(out / VERSIONS_FILE, json.dumps(environment_versions(), indent=2) + "\n")
    atomic_copy(source.run_dir / SPLIT_FILE, out / SPLIT_FILE)
    baseline = run_baseline(source.run_dir, source.dataset)
    atomic_write_text(out / BASELINE_FILE, json.dumps(baseline, indent=2) + "\n")
    checkpoint = {"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                  "epoch": 0, "global_step": 0,
                  "hyper_parameters": {"config": config.to_dict()},
                  "callbacks": {RECORD_KEY: {"best_val_mse": math.inf, "best_epoch": -1,
                                             "rows": []}}}
    data = checkpoint_bytes(checkpoint)
    for name in ("last.ckpt", "best.ckpt"):
        atomic_write_bytes(out / name, data)
    write_metrics(out / METRICS_FILE, [])
    metrics = {**errors, "test_mae_mev": 1000.0 * errors["test_mae"], "checkpoint": "best.ckpt",
               "epoch": 0, "global_step": 0,
               "parameters": sum(p.numel() for p in model.parameters()), "epochs_trained": 0,
               "wall_time_s": 0.0,
               **{f"baseline_{stage}_{kind}": baseline.get(f"{stage}_{kind}")
                  for stage in ("val", "test") for kind in ("mse", "mae")}}
    atomic_write_text(out / TEST_METRICS_FILE, json.dumps(metrics, indent=2) + "\n")


def _check_out(out: Path, source_dir: Path, resume: bool, overwrite: bool) -> None:
    """Refuse an --out holding run files that are not a prune of ``source_dir`` stopped
    before its first fine-tuning epoch (which starts over), unless ``overwrite``."""
    if out.resolve() == source_dir.resolve():
        raise RunDirError(f"--out {out} is the run being pruned; choose a new directory")
    if resume:
        if overwrite:
            raise ConfigError("--overwrite starts afresh and --resume continues; give one")
        if not (out / PRUNED_FROM_FILE).exists():
            raise RunDirError(f"cannot resume {out}: it has no {PRUNED_FROM_FILE}, so it is not "
                              f"a pruned run (start it with irrepscope prune, without --resume)")
        return
    present = run_files(out)
    if overwrite or not present:
        clear_run_files(out)
        return
    if (out / "last.ckpt").exists():
        raise RunDirError(f"{out} already holds a run; choose another --out, pass --resume to "
                          f"continue its fine-tuning, or --overwrite to replace it")
    if _recorded_source(out) != str(source_dir.resolve()):
        raise RunDirError(f"{out} holds {', '.join(present)}, not from a prune of {source_dir}; "
                          f"choose another --out, or pass --overwrite to replace them")
    clear_run_files(out)  # this prune, stopped before its first fine-tuning epoch: start over


def _recorded_source(out: Path) -> str | None:
    """The source run named by ``out``'s pruned_from.json (None: none, or unreadable)."""
    try:
        return json.loads((out / PRUNED_FROM_FILE).read_text()).get("source_run")
    except (OSError, ValueError, AttributeError):
        return None


def check_schedule(config: RunConfig, num_train: int) -> None:
    """``ConfigError`` before any work when the warm-up is not shorter than the fine-tuning."""
    t = config.train
    batches = math.ceil(num_train / t.batch_size)
    limit = t.limit_train_batches
    batches = min(batches, limit) if isinstance(limit, int) else max(1, int(batches * limit))
    total = batches * t.max_epochs
    if t.warmup_steps >= total > 0:
        raise ConfigError(f"train.warmup_steps={t.warmup_steps} is not "
                          f"shorter than the fine-tuning ({t.max_epochs} epoch(s) x {batches} "
                          f"batches = {total} optimizer steps); add --set "
                          f"train.warmup_steps=N with N < {total}, or give more --epochs")


def prune_run(run_dir: str | Path, out: str | Path, *, epochs: int,
              drop: Sequence[int] | None = None, auto: bool = False,
              threshold: float = AUTO_THRESHOLD, drop_sh: bool = False,
              overrides: Iterable[str] = (), checkpoint: str = "best", resume: bool = False,
              speed_batches: int = SPEED_BATCHES, command: str = "",
              progress: bool = False, overwrite: bool = False) -> Path:
    """Prune ``run_dir`` into the run directory ``out`` (see the module text); returns ``out``.

    Exactly one of ``drop`` (orders) and ``auto`` (the rule, with ``threshold``) chooses the
    orders; ``drop_sh`` drops them from the spherical harmonics too; ``epochs`` >= 0 of
    fine-tuning. ``resume`` continues an interrupted fine-tuning of ``out``; ``overwrite``
    replaces the run files of another run there (``train.ownership``).
    """
    out = Path(out)
    if (drop is None) == (not auto):
        raise ConfigError("prune: choose the orders with --drop L,L or with --auto (one of them)")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ConfigError(f"--epochs must be an integer >= 0, got {epochs!r}")
    if speed_batches < 0:
        raise ConfigError(f"--speed-batches must be >= 0 (0: no timing), got {speed_batches}")
    _check_out(out, Path(run_dir), resume, overwrite)
    if resume:
        return _resume(out, epochs, overrides, command)
    source = open_source(run_dir, checkpoint, progress)
    recipe = pruned_run_config(source.config, source.model.config, epochs, overrides)
    if epochs > 0:  # the recipe's checks, before the orders are scored
        check_schedule(recipe, len(source.split.train))
    drop, rule = _choose_orders(source, drop, auto, threshold, progress)
    config = pruned_run_config(source.config, pruned_config(source.model.config, drop, drop_sh),
                               epochs, overrides)
    pruned = _pruned_model(source, config.model)
    hidden_only = _pruned_model(source, pruned_config(source.model.config, drop)) \
        if drop_sh else None
    print(f"irrepscope: pruning orders {sorted(drop)} from {source.run_dir} "
          f"({'hidden features and spherical harmonics' if drop_sh else 'hidden features'}); "
          f"measuring both models", file=sys.stderr)
    record = {"source_run": str(source.run_dir.resolve()), "source_checkpoint": source.checkpoint,
              "source_epochs_trained": _epochs_trained(source.run_dir), "run_dir": str(out),
              "dropped_orders": sorted(drop), "from_spherical_harmonics": drop_sh,
              "rule": rule, "orders_before": _orders(source.config),
              "orders_after": _orders(config), "unused_sh_orders": unused_sh_orders(pruned),
              "fine_tune_epochs": epochs, "command": command,
              **measure(source, pruned, hidden_only, config, speed_batches)}
    if epochs == 0:
        write_untrained_run(out, config, pruned, source, record["errors"]["pruned"])
    else:
        out.mkdir(parents=True, exist_ok=True)
        write_run_config(config, out)  # first: the folder holds this run (train.ownership)
        atomic_copy(source.run_dir / SPLIT_FILE, out / SPLIT_FILE)  # the very same split
        write_record(out, record)  # before training: a resume finds the numbers from before
        train(config, out, callbacks=[StartFrom(pruned.state_dict())])
    return _finish(out, record)


def _choose_orders(source: Source, drop: Sequence[int] | None, auto: bool, threshold: float,
                   progress: bool) -> tuple[list[int], dict[str, Any]]:
    """(orders to drop, the rule's record): ``drop`` as given, or the rule of ``auto``."""
    if not auto:
        assert drop is not None
        return sorted(set(drop)), {"kind": "given", "text": "orders given with --drop"}
    batch_size = source.config.train.eval_batch_size or source.config.train.batch_size
    return auto_drop(source.run_dir, source.model, source.graphs("val"), source.config.seed,
                     batch_size, threshold, progress)


def _pruned_model(source: Source, model_config: Any) -> EquivariantGNN:
    """The model of ``model_config`` (eval mode, the source's dtype) with the source's weights."""
    pruned = build_model(model_config, source.model.embedding.weight.dtype).eval()
    pruned.load_state_dict(pruned_state_dict(source.model, pruned))
    return pruned


def _epochs_trained(run_dir: Path) -> int | None:
    """Epochs the run was trained for (its test_metrics.json; None while it is training)."""
    path = run_dir / TEST_METRICS_FILE
    return json.loads(path.read_text()).get("epochs_trained") if path.exists() else None


def _orders(config: RunConfig) -> dict[str, list[int]]:
    return {"spherical_harmonics": list(config.model.orders),
            "hidden": config.model.feature_orders}


def _resume(out: Path, epochs: int, overrides: Iterable[str], command: str) -> Path:
    """Continue the fine-tuning of the pruned run ``out`` from its last.ckpt."""
    record = json.loads((out / PRUNED_FROM_FILE).read_text())
    if epochs == 0:
        raise ConfigError("--resume continues fine-tuning: give --epochs > 0 (the total)")
    config = load_config(read_run_config(out).to_dict(),
                         [*overrides, f"train.max_epochs={epochs}"])
    train(config, out, resume=True)
    record["fine_tune_epochs"] = epochs
    record["command"] = command or record.get("command", "")
    return _finish(out, record)


def _finish(out: Path, record: dict[str, Any]) -> Path:
    """Add the fine-tuned run's test errors to the record; write the record and the report."""
    metrics = read_test_metrics(out)
    record["errors"]["fine_tuned"] = {k: metrics[k] for k in ("test_mse", "test_mae",
                                                              "test_count")}
    record["epochs_trained"] = metrics.get("epochs_trained", 0)
    record["baseline"] = {k: metrics.get(f"baseline_{k}") for k in ("test_mse", "test_mae")}
    report = write_record(out, record)
    print(f"irrepscope: {summary_line(record)}; wrote {out / PRUNED_FROM_FILE} and {report}",
          file=sys.stderr)
    return out
