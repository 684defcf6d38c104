"""Starting a run from another run's weights (``irrepscope train --init-from RUN``).

The source is a run directory (its ``best.ckpt``, else ``last.ckpt`` with a note) or a
``.ckpt`` file written by ``irrepscope train``. Every tensor of the new model (parameters and
buffers) whose name and shape match one in the source is copied from it; the source's weights
are what its checkpoint stores, i.e. the EMA average when the source used ``train.ema_decay``.
What is not loaded is reported and recorded in ``init_from.json``:

- ``new_in_target``: tensors the source does not have (e.g. a new output head); they keep their
  fresh initialisation from the run seed;
- ``unused_from_source``: source tensors the new model does not have (e.g. a head it drops);
- ``refitted``: the energy references (``reference.*``: element energies and residual scale).
  They are never copied: the new run fits them on its own training split before the first step,
  as every run does, because the target, the split or the data may have changed;
- ``shape_mismatch``: tensors present in both with other shapes (another ``model.orders`` or
  ``hidden``). They are an error naming each tensor and both shapes, before anything is written,
  unless ``partial`` (``--init-partial``): then they keep their fresh initialisation too.

``--resume`` of an initialised run continues from its own ``last.ckpt`` and never re-applies
the initialisation; giving another ``--init-from`` with ``--resume`` is an error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from irrepscope.errors import ConfigError, RunDirError
from irrepscope.model.gnn import build_model
from irrepscope.train.module import model_state_dict
from irrepscope.train.run_records import atomic_write_text, load_checkpoint, load_run_checkpoint

INIT_FILE = "init_from.json"
REFITTED_PREFIX = "reference."  # energy references: fitted on each run's own training split


@dataclass
class InitPlan:
    """Which target tensors come from the source, and why each other one does not."""

    loaded: list[str] = field(default_factory=list)
    new_in_target: list[str] = field(default_factory=list)
    unused_from_source: list[str] = field(default_factory=list)
    refitted: list[str] = field(default_factory=list)
    shape_mismatch: list[dict[str, Any]] = field(default_factory=list)

    @property
    def not_loaded(self) -> list[str]:
        """Target tensors that keep their own initialisation (or fit)."""
        return [*self.new_in_target, *self.refitted, *(m["name"] for m in self.shape_mismatch)]


def plan_init(source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]
              ) -> InitPlan:
    """Match ``source`` and ``target`` state dicts by name and shape (target order kept)."""
    plan = InitPlan()
    for name, tensor in target.items():
        if name.startswith(REFITTED_PREFIX):
            plan.refitted.append(name)
        elif name not in source:
            plan.new_in_target.append(name)
        elif tuple(source[name].shape) != tuple(tensor.shape):
            plan.shape_mismatch.append({"name": name, "source_shape": list(source[name].shape),
                                        "target_shape": list(tensor.shape)})
        else:
            plan.loaded.append(name)
    plan.unused_from_source = [name for name in source
                               if name not in target and not name.startswith(REFITTED_PREFIX)]
    return plan


def _shape(shape: list[int]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def mismatch_message(where: str, plan: InitPlan, source_model: Mapping[str, Any] | None,
                     target_model: Mapping[str, Any]) -> str:
    """The error of a source whose tensors have other shapes: each tensor and both shapes."""
    tensors = "; ".join(f"{m['name']} (source {_shape(m['source_shape'])}, this model "
                        f"{_shape(m['target_shape'])})" for m in plan.shape_mismatch)
    differ = ""
    if source_model is not None:
        keys = [k for k in ("orders", "hidden", "num_layers", "hidden_orders")
                if source_model.get(k) != target_model.get(k) and k in target_model]
        if keys:
            differ = " The models differ in " + ", ".join(
                f"model.{k} ({source_model.get(k)} in the source, {target_model.get(k)} here)"
                for k in keys) + "."
    return (f"--init-from {where}: {len(plan.shape_mismatch)} tensor(s) have other shapes in "
            f"this model: {tensors}.{differ} Use a source with the same architecture, or pass "
            f"--init-partial to load only the matching tensors (the others keep their fresh "
            f"initialisation)")


@dataclass
class InitSource:
    """A checked source of initial weights: its checkpoint file, run and model state."""

    checkpoint_path: Path
    run_dir: Path | None
    epoch: int | None
    state: dict[str, torch.Tensor]
    source_model: dict[str, Any] | None
    plan: InitPlan
    partial: bool

    def apply(self, model: nn.Module) -> dict[str, Any]:
        """Copy the planned tensors into ``model``; returns the record for ``init_from.json``."""
        target = model.state_dict()
        with torch.no_grad():
            for name in self.plan.loaded:
                target[name].copy_(self.state[name])
        counts = {name: t.numel() for name, t in target.items()}
        params = dict(model.named_parameters())
        return {
            "source": str(self.checkpoint_path), "run_dir": str(self.run_dir)
            if self.run_dir is not None else None, "checkpoint": self.checkpoint_path.name,
            "epoch": self.epoch, "source_model": self.source_model, "partial": self.partial,
            "tensors_loaded": len(self.plan.loaded), "tensors_total": len(target),
            "parameters_loaded": sum(counts[n] for n in self.plan.loaded if n in params),
            "parameters_total": sum(p.numel() for p in params.values()),
            **asdict(self.plan)}


def _source_model(checkpoint: Mapping[str, Any]) -> dict[str, Any] | None:
    """The model section of the source's config (stored in the checkpoint's hyperparameters)."""
    hparams = checkpoint.get("hyper_parameters") or {}
    config = hparams.get("config") if isinstance(hparams, Mapping) else None
    model = config.get("model") if isinstance(config, Mapping) else None
    return dict(model) if isinstance(model, Mapping) else None


def read_init_source(spec: str | Path) -> tuple[Path, Path | None, dict[str, Any]]:
    """(checkpoint path, run dir or None, checkpoint) of a run directory or a .ckpt file."""
    path = Path(spec)
    if path.is_dir():
        if not (path / "best.ckpt").exists() and not (path / "last.ckpt").exists():
            raise RunDirError(f"--init-from {path}: the folder holds no best.ckpt or last.ckpt; "
                              f"give a run directory written by `irrepscope train` or a .ckpt "
                              f"file")
        ckpt_path, checkpoint = load_run_checkpoint(path, "best")
        return ckpt_path, path, checkpoint
    if not path.exists():
        raise RunDirError(f"--init-from {path} does not exist; give a run directory written by "
                          f"`irrepscope train` (its best.ckpt is used) or one of its .ckpt files")
    run_dir = path.parent if (path.parent / "config.yaml").exists() else None
    return path, run_dir, load_checkpoint(path)


def prepare_init(spec: str | Path, model: nn.Module, target_model: Mapping[str, Any],
                 partial: bool = False) -> InitSource:
    """Read the source and match it against ``model`` (built from ``target_model``, the new
    run's model section); raises ``ConfigError`` naming shape mismatches unless ``partial``."""
    ckpt_path, run_dir, checkpoint = read_init_source(spec)
    state = model_state_dict(checkpoint)
    if not state:
        raise RunDirError(f"--init-from {ckpt_path}: the checkpoint holds no model weights")
    plan = plan_init(state, model.state_dict())
    source_model = _source_model(checkpoint)
    if plan.shape_mismatch and not partial:
        raise ConfigError(mismatch_message(str(ckpt_path), plan, source_model, target_model))
    if not plan.loaded:
        raise ConfigError(f"--init-from {ckpt_path}: no tensor of the source matches this model "
                          f"by name and shape, so nothing would be loaded; check the source run")
    epoch = checkpoint.get("epoch")
    return InitSource(ckpt_path.resolve(), run_dir.resolve() if run_dir else None,
                      None if epoch is None else int(epoch), state, source_model, plan, partial)


def write_init_record(run_dir: Path, record: dict[str, Any]) -> None:
    """``run_dir/init_from.json`` (atomic)."""
    atomic_write_text(Path(run_dir) / INIT_FILE, json.dumps(record, indent=2) + "\n")


def read_init_record(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's ``init_from.json``, or None for a run trained from scratch."""
    path = Path(run_dir) / INIT_FILE
    return json.loads(path.read_text()) if path.exists() else None


def check_resume_init(run_dir: Path, spec: str | Path | None) -> str | None:
    """On ``--resume``: None, or a note that the recorded initialisation is not re-applied.

    Raises ``ConfigError`` when ``spec`` names another source than the one the run recorded.
    """
    record = read_init_record(run_dir)
    if spec is None:
        return None if record is None else (
            f"{run_dir} was initialised from {record['source']}; resuming from its own "
            f"last.ckpt (the initialisation is not applied again)")
    if record is None or not _same_source(record, Path(spec)):
        was = "trained from scratch" if record is None else f"initialised from {record['source']}"
        raise ConfigError(f"cannot resume {run_dir} with --init-from {spec}: the run was {was}; "
                          f"drop --init-from (a resumed run continues from its own last.ckpt)")
    return (f"{run_dir}: --init-from {spec} was applied when the run started; resuming from its "
            f"own last.ckpt (not applied again)")


def _same_source(record: Mapping[str, Any], spec: Path) -> bool:
    """Whether ``spec`` (a run directory or a checkpoint file) is the recorded source."""
    if spec.is_dir():
        return record.get("run_dir") is not None and Path(record["run_dir"]) == spec.resolve()
    return Path(record["source"]) == spec.resolve()


def describe_init(record: Mapping[str, Any], name_of: Mapping[str, str] | None = None) -> str:
    """One sentence: where a run's initial weights came from and what was not loaded."""
    run = record.get("run_dir")
    source = (name_of or {}).get(str(run)) if run else None
    where = f"{source} ({record['checkpoint']})" if source else record["source"]
    epoch = record.get("epoch")
    text = (f"initialised from {where}{'' if epoch is None else f', epoch {epoch}'}: loaded "
            f"{record['tensors_loaded']} of {record['tensors_total']} tensors "
            f"({record['parameters_loaded']:,} of {record['parameters_total']:,} parameters)")
    parts = []
    if record.get("new_in_target"):
        parts.append("new in this model: " + ", ".join(record["new_in_target"]))
    if record.get("shape_mismatch"):
        parts.append("other shapes (--init-partial): " + ", ".join(
            m["name"] for m in record["shape_mismatch"]))
    if record.get("refitted"):
        parts.append("refitted on this run's training split: " + ", ".join(record["refitted"]))
    if record.get("unused_from_source"):
        parts.append("source tensors unused: " + ", ".join(record["unused_from_source"]))
    return text + ("; not loaded: " + "; ".join(parts) if parts else "")


def init_for_run(config: Any, run_dir: Path, resume: bool, spec: str | Path | None,
                 partial: bool = False, announce: bool = True) -> InitSource | None:
    """The checked source of a run's initial weights, or None (no ``--init-from``, or a resume,
    which never re-applies one). Runs before anything is written to ``run_dir``."""
    if resume:
        note = check_resume_init(run_dir, spec)
        if note and announce:
            print(f"irrepscope: {note}", file=sys.stderr)
        return None
    if spec is None:
        if partial:
            raise ConfigError("--init-partial applies to --init-from RUN; give the run too")
        return None
    return prepare_init(spec, build_model(config.model), config.model.to_dict(), partial)


def apply_init(source: InitSource, model: nn.Module, run_dir: Path, announce: bool) -> None:
    """Load ``source`` into ``model``; with ``announce`` (rank 0) record and print it."""
    record = source.apply(model)
    if announce:
        write_init_record(run_dir, record)
        print(f"irrepscope: {describe_init(record)}", file=sys.stderr)
