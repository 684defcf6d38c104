"""Run configuration: ``RunConfig(seed, data, model, train)`` loaded from YAML and validated.

A config file has four top-level keys (all optional, defaults are the paper's Table 2)::

    seed: 21616
    data:  {graph: bonds, fractions: [0.8, 0.1, 0.1], subset: null, ...}   # DataConfig
    model: {orders: [0, 1, 2], hidden: 32, ...}                           # ModelConfig
    train: {max_epochs: 100, batch_size: 32, lr: 0.001, ...}              # TrainConfig

Unknown keys, wrong types and out-of-range values raise ``ConfigError`` naming the key and the
valid choices. Overrides ``"a.b=value"`` (the CLI's ``--set``) are applied before validation;
the value is parsed as YAML (``--set model.orders=[0,3,4]``, ``--set data.subset=null``). Files
and values are read by ``config_yaml.load_config_yaml``: a key given twice and YAML aliases are
errors, and messages quote values cut short (``errors.quoted``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import re
import sys
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from irrepscope.errors import ConfigError, quoted
from irrepscope.model.config import ModelConfig
from irrepscope.train.config_yaml import load_config_yaml
from irrepscope.train.schedules import check_schedule_settings
from irrepscope.train.target_weights import check_target_weights

MAX_SEED = 2**32 - 1  # numpy's and Lightning's seed_everything's largest seed
_YAML_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
PRECISIONS = ("32-true", "32", "64-true", "64", "16-mixed", "16-true", "bf16-mixed", "bf16-true")
# Settings that may change between a run and its --resume (how it runs, not what it computes).
RESUMABLE_KEYS = frozenset({
    "train.max_epochs", "train.accelerator", "train.devices", "train.strategy",
    "train.num_nodes", "train.progress_bar", "train.log_every_n_steps", "data.num_workers",
    "data.data_dir", "train.track_irreps", "train.track_irreps_molecules",
})


@dataclass
class DataConfig:
    """Which molecules, which graph, which split (see ``irrepscope.data``); cutoff in Å.

    ``data_dir``: processed-data cache folder; ``qm9_dir``: folder of qm9_part*.csv (default:
    qm9pack's, or $IRREPSCOPE_QM9_DIR); ``subset``: use only this many molecules (drawn by the
    seeded split); ``split_seed``: defaults to the run seed.
    """

    source: str = "qm9"
    graph: Literal["bonds", "radius"] = "bonds"
    cutoff: float = 6.0
    data_dir: str | None = None
    qm9_dir: str | None = None
    xyz: str | None = None
    energy_key: str = "energy"
    skip_invalid: bool = False
    fractions: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    subset: int | None = None
    split_seed: int | None = None
    num_workers: int = 0

    def validate(self) -> DataConfig:
        """Range checks beyond types; returns ``self``."""
        if self.source not in ("qm9", "xyz"):
            raise ConfigError(f"data.source must be 'qm9' or 'xyz', got {quoted(self.source)}")
        if self.source == "xyz" and not self.xyz:
            raise ConfigError("data.source is 'xyz' but data.xyz (the extxyz file) is not set")
        _positive("data.cutoff", self.cutoff)
        if len(self.fractions) != 3:
            raise ConfigError(f"data.fractions must be [train, val, test], got {self.fractions}")
        if any(f <= 0 for f in self.fractions) or abs(sum(self.fractions) - 1.0) > 1e-6:
            raise ConfigError(
                f"data.fractions must be three positive numbers summing to 1, got {self.fractions}"
            )
        if self.subset is not None and self.subset < 3:
            raise ConfigError(f"data.subset must be >= 3 molecules (or null), got {self.subset}")
        if self.num_workers < 0:
            raise ConfigError(f"data.num_workers must be >= 0, got {self.num_workers}")
        return self

    def load_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``irrepscope.data.load_dataset`` for this config."""
        kwargs = dict(source=self.source, graph=self.graph, cutoff=self.cutoff,
                      data_dir=self.data_dir, xyz=self.xyz, energy_key=self.energy_key,
                      skip_invalid=self.skip_invalid)
        if self.qm9_dir is not None:
            kwargs["qm9_dir"] = self.qm9_dir
        return kwargs


@dataclass
class TrainConfig:
    """Optimisation (AdamW, Table 2) and Lightning Trainer options.

    ``lr_schedule``: constant (the paper's) | warmup_cosine | reduce_on_plateau, with
    ``warmup_steps`` (optimizer steps), ``min_lr``, ``plateau_factor`` and ``plateau_patience``
    (epochs); see ``irrepscope.train.schedules``. ``ema_decay``: null (off, the paper's) or a
    decay in (0, 1) for an exponential moving average of the weights (``train.ema``).
    ``targets``: loss weight of each trained target (``energy``, ``charges``, ``dipole``,
    ``quadrupole``; see ``train.targets``), default energy only. ``track_irreps``: null (off)
    or N, record each order's use every N epochs on ``track_irreps_molecules`` validation
    molecules (``train.irrep_tracking``).
    """

    max_epochs: int = 100
    batch_size: int = 32
    eval_batch_size: int | None = None
    lr: float = 1e-3
    weight_decay: float = 0.01
    gradient_clip_val: float | None = None
    accelerator: str = "auto"
    devices: int | str = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str | int = "32-true"
    deterministic: bool | str = False
    limit_train_batches: int | float = 1.0
    limit_val_batches: int | float = 1.0
    limit_test_batches: int | float = 1.0
    log_every_n_steps: int = 50
    progress_bar: bool = True
    tensorboard: bool = False
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    min_lr: float = 0.0
    plateau_factor: float = 0.5
    plateau_patience: int = 5
    ema_decay: float | None = None
    targets: dict[str, float] = field(default_factory=lambda: {"energy": 1.0})
    track_irreps: int | None = None
    track_irreps_molecules: int = 256

    def validate(self) -> TrainConfig:
        """Range checks beyond types; returns ``self``."""
        for name in ("max_epochs", "batch_size", "num_nodes", "log_every_n_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if self.eval_batch_size is not None and self.eval_batch_size < 1:
            raise ConfigError(f"train.eval_batch_size must be >= 1, got {self.eval_batch_size}")
        _positive("train.lr", self.lr)
        if self.weight_decay < 0:
            raise ConfigError(f"train.weight_decay must be >= 0, got {self.weight_decay}")
        if self.gradient_clip_val is not None:
            _positive("train.gradient_clip_val", self.gradient_clip_val)
        if isinstance(self.devices, str) and self.devices != "auto":
            raise ConfigError(f"train.devices must be a positive integer or 'auto', "
                              f"got {quoted(self.devices)}")
        if isinstance(self.devices, int) and self.devices < 1:
            raise ConfigError(f"train.devices must be >= 1, got {self.devices}")
        self.precision = str(self.precision)
        if self.precision not in PRECISIONS:
            raise ConfigError(f"train.precision must be one of {', '.join(PRECISIONS)}, "
                              f"got {quoted(self.precision)}")
        if isinstance(self.deterministic, str) and self.deterministic != "warn":
            raise ConfigError(f"train.deterministic must be true, false or 'warn', "
                              f"got {quoted(self.deterministic)}")
        if self.tensorboard and not any(importlib.util.find_spec(m)
                                        for m in ("tensorboard", "tensorboardX")):
            raise ConfigError("train.tensorboard is true but neither tensorboard nor tensorboardX "
                              "is installed (pip install tensorboard)")
        check_schedule_settings(self)
        self.targets = check_target_weights(self.targets)
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ConfigError(f"train.ema_decay must be in (0, 1) (e.g. 0.99), or null to turn "
                              f"the weight average off; got {self.ema_decay}")
        if self.track_irreps is not None and self.track_irreps < 1:
            raise ConfigError(f"train.track_irreps must be a number of epochs >= 1 (record every "
                              f"N epochs), or null to turn it off; got {self.track_irreps}")
        if self.track_irreps_molecules < 2:
            raise ConfigError(f"train.track_irreps_molecules must be >= 2 validation molecules "
                              f"(probes need 30), got {self.track_irreps_molecules}")
        for name in ("limit_train_batches", "limit_val_batches", "limit_test_batches"):
            value = getattr(self, name)
            if value <= 0 or (isinstance(value, float) and value > 1.0):
                raise ConfigError(f"train.{name} must be a fraction in (0, 1] or a batch count "
                                  f">= 1, got {value}")
        return self


@dataclass
class RunConfig:
    """Everything a run needs: one seed (split and weights), data, model, training."""

    seed: int = 21616
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RunConfig:
        """Build and validate from plain data (a parsed YAML file); unknown keys are errors."""
        values = _mapping("config", values)
        _check_keys("", values, {"seed", "data", "model", "train"})
        seed = _coerce("seed", values.get("seed", 21616), int)
        if not 0 <= seed <= MAX_SEED:
            raise ConfigError(f"seed must be from 0 to {MAX_SEED}, got {quoted(seed)}")
        data = _build(DataConfig, "data", _mapping("data", values.get("data") or {})).validate()
        model = ModelConfig.from_dict(_mapping("model", values.get("model") or {}))
        train = _build(TrainConfig, "train", _mapping("train", values.get("train") or {}))
        config = cls(seed=seed, data=data, model=model, train=train.validate())
        if data.split_seed is not None and not 0 <= data.split_seed <= MAX_SEED:
            raise ConfigError(f"data.split_seed must be from 0 to {MAX_SEED}, got "
                              f"{quoted(data.split_seed)}")
        return config

    def to_dict(self) -> dict[str, Any]:
        """Plain-data copy, as written to a run directory's ``config.yaml``."""
        return {"seed": self.seed, "data": dataclasses.asdict(self.data),
                "model": self.model.to_dict(), "train": dataclasses.asdict(self.train)}

    @property
    def split_seed(self) -> int:
        """Seed of the train/val/test split: ``data.split_seed``, else the run seed."""
        return self.seed if self.data.split_seed is None else self.data.split_seed


def load_config(path: str | Path | Mapping[str, Any], overrides: Iterable[str] = ()) -> RunConfig:
    """Read a YAML config (or take a mapping), apply ``"a.b=value"`` overrides, validate."""
    if isinstance(path, Mapping):
        raw: Any = dict(path)
    else:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        raw = _read_yaml(path)
        if raw is None or raw == {}:
            print(f"irrepscope: config file {path} sets nothing, so every default applies: "
                  f"{_defaults_summary()} (see docs/training.md)", file=sys.stderr)
            raw = {}
    return RunConfig.from_dict(apply_overrides(_mapping("config", raw), overrides))


def _read_yaml(path: Path) -> Any:
    """The parsed YAML of ``path``; ``ConfigError`` for text that is not UTF-8 or not YAML."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise ConfigError(f"config file {path} is not UTF-8 text (byte 0x{data[err.start]:02x} "
                          f"on line {line}); save it with UTF-8 encoding") from None
    try:
        return load_config_yaml(text)
    except ConfigError as err:
        raise ConfigError(f"config file {path}, {err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None


def _defaults_summary() -> str:
    """The defaults that decide what an empty config trains, in one phrase."""
    d, m, t = DataConfig(), ModelConfig(), TrainConfig()
    data = "all of QM9" if d.source == "qm9" and d.subset is None else f"{d.source}"
    return (f"{data} ({d.graph} graph), L={m.orders}, h={m.hidden}, {t.max_epochs} epochs, "
            f"batch {t.batch_size}, lr {t.lr:g}")


def apply_overrides(values: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Copy of ``values`` with each ``"section.key=value"`` set (value parsed as YAML)."""
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in values.items()}
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {quoted(item)} must look like section.key=value "
                              f"(e.g. train.max_epochs=5)")
        try:
            value = load_config_yaml(text)
        except ConfigError as err:
            raise ConfigError(f"override {quoted(item)}: {err}") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"override {quoted(item)}: value is not valid YAML: {err}") \
                from None
        parts = key.split(".")
        if parts[0] == "seed" and len(parts) == 1:
            out["seed"] = value
            continue
        sections = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
        if parts[0] not in sections or len(parts) != 2:
            raise ConfigError(f"override {quoted(item)}: unknown key {key!r}; valid keys: seed, "
                              f"{', '.join(f'{s}.<key>' for s in sections)}")
        known = {f.name for f in dataclasses.fields(sections[parts[0]])}
        if parts[1] not in known:
            raise ConfigError(f"override {quoted(item)}: unknown key {key!r}; valid keys in "
                              f"{parts[0]}: {', '.join(sorted(known))}")
        section = out.get(parts[0]) or {}
        out[parts[0]] = {**_mapping(parts[0], section), parts[1]: value}
    return out


def config_differences(old: RunConfig, new: RunConfig) -> list[str]:
    """Dotted keys whose values differ between two configs (``'model.hidden'``...)."""
    a, b = _flatten(old.to_dict()), _flatten(new.to_dict())
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _mapping(name: str, values: Any) -> dict[str, Any]:
    if not isinstance(values, Mapping):
        raise ConfigError(f"{name}: expected a mapping of settings, got {type(values).__name__} "
                          f"({quoted(values)})")
    return dict(values)


def _check_keys(section: str, values: Mapping[str, Any], known: set[str]) -> None:
    unknown = sorted(set(values) - known)
    if unknown:
        where = f"{section}: " if section else ""
        raise ConfigError(f"{where}unknown key(s) {', '.join(map(str, unknown))}; "
                          f"valid keys: {', '.join(sorted(known))}")


def _build(cls: type, section: str, values: Mapping[str, Any]) -> Any:
    """Instantiate dataclass ``cls`` from ``values`` after checking keys and types."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    _check_keys(section, values, set(fields))
    hints = typing.get_type_hints(cls)
    kwargs = {name: _coerce(f"{section}.{name}", value, hints[name])
              for name, value in values.items()}
    return cls(**kwargs)


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """``value`` checked against type ``hint`` (ints accepted for floats, lists for tuples)."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in (o for o in options if o is not type(None)):
            try:
                return _coerce(name, value, option)
            except ConfigError:
                continue
        raise ConfigError(f"{name} must be {_describe(hint)}, got {quoted(value)}")
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise ConfigError(f"{name} must be one of {', '.join(map(repr, typing.get_args(hint)))}"
                              f", got {quoted(value)}")
        return value
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{name} must be a mapping like {{energy: 1.0}}, got {quoted(value)}")
        key_hint, value_hint = typing.get_args(hint)
        return {_coerce(f"{name} key", k, key_hint): _coerce(f"{name}.{k}", v, value_hint)
                for k, v in value.items()}
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list, got {quoted(value)}")
        (inner, *_) = typing.get_args(hint) or (Any,)
        return [_coerce(f"{name}[{i}]", v, inner) for i, v in enumerate(value)]
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {quoted(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer, got {quoted(value)}")
        return value
    if hint is float:
        if isinstance(value, str) and _YAML_FLOAT.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads 5e-4 (no dot) as a string
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, got {quoted(value)}")
        if not math.isfinite(value):
            raise ConfigError(f"{name} must be finite, got {quoted(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {quoted(value)}")
        return value
    if hint is Any:
        return value
    raise TypeError(f"unsupported config type {hint!r} for {name}")  # programming error


def _describe(hint: Any) -> str:
    options = [o for o in typing.get_args(hint)]
    names = ["null" if o is type(None) else getattr(o, "__name__", str(o)) for o in options]
    return " or ".join(names)


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"{name} must be > 0, got {value}")
