"""ModelConfig: every hyperparameter of the equivariant GNN, validated with one clear message each.

Defaults are the paper's Table 2 (embedding 64, 20 Bessel functions, cutoff 6.0 Å, degree
normalization 6.0828, label mean/std -76.116/10.3238 eV) with the canonical L=[0, 1, 2], h=32.
``energy_reference`` (see ``irrepscope.model.references``): ``global_mean_std`` (the paper's,
uses label_mean/label_std) or ``element_least_squares`` (per-element energies fitted on the
training split). ``readout_init``: ``random`` (the paper's) or ``zero`` (the readout starts at
zero, so an untrained model predicts its energy reference exactly). ``orders`` sets the orders of
the edge spherical harmonics and, unless ``hidden_orders`` is given, of the hidden features too;
``hidden_orders`` (null: the same as ``orders``) sets the hidden features' orders alone (a
pruned model keeps the spherical harmonics while dropping hidden orders). ``num_layers`` >= 0:
the model has the input block and ``num_layers + 1`` residual blocks (``num_layers + 2``
interaction blocks; 0 is the smallest model, two blocks, as ``irrepscope model info`` shows).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from irrepscope.errors import ConfigError, quoted

MAX_ORDER = 10
SH_BACKENDS = ("auto", "torch", "triton", "e3nn")
TENSOR_PRODUCTS = ("e3nn", "fused", "cueq")
AGGREGATE = ("auto", "always", "never")
READOUT_INITS = ("random", "zero")
ENERGY_REFERENCES = ("global_mean_std", "element_least_squares")  # model.references


@dataclass
class ModelConfig:
    """Hyperparameters of ``EquivariantGNN``; lengths in Å, label mean/std in eV."""

    orders: list[int] = field(default_factory=lambda: [0, 1, 2])
    hidden_orders: list[int] | None = None
    hidden: int = 32
    num_layers: int = 3
    embedding_dim: int = 64
    num_elements: int = 100
    num_basis: int = 20
    cutoff: float = 6.0
    degree_norm: float = 6.0828
    output_dim: int = 1
    sh_backend: str = "auto"
    tensor_product: str = "fused"
    aggregate: str = "auto"
    gate: bool = False
    irrep_dropout: float = 0.0
    label_mean: float = -76.116
    label_std: float = 10.3238
    energy_reference: str = "global_mean_std"
    readout_init: str = "random"

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ModelConfig:
        """Build and validate from a mapping (e.g. a YAML section); unknown keys are errors."""
        if not isinstance(values, Mapping):
            raise ConfigError(
                f"model: expected a mapping of settings, got {type(values).__name__}"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"model: unknown key(s) {', '.join(unknown)}; "
                f"valid keys: {', '.join(sorted(known))}"
            )
        return cls(**dict(values)).validate()

    def to_dict(self) -> dict[str, Any]:
        """Plain-data copy (YAML/JSON friendly)."""
        return dataclasses.asdict(self)

    def validate(self) -> ModelConfig:
        """Check every field, normalise ``orders`` to a sorted list of ints; returns ``self``."""
        self.orders = _validate_orders(self.orders)
        if self.hidden_orders is not None:
            self.hidden_orders = _validate_orders(self.hidden_orders, "model.hidden_orders")
            extra = sorted(set(self.hidden_orders) - set(self.orders))
            if extra:
                raise ConfigError(
                    f"model.hidden_orders {self.hidden_orders} has order(s) {extra} that are not "
                    f"in model.orders {self.orders}: the input block makes each hidden order from "
                    f"the atom embedding (scalars) times the spherical harmonic of that order; "
                    f"add them to model.orders or remove them from model.hidden_orders")
        for name, minimum in (("hidden", 1), ("num_layers", 0), ("embedding_dim", 1),
                              ("num_elements", 2), ("num_basis", 1), ("output_dim", 1)):
            _check_int(name, getattr(self, name), minimum)
        for name in ("cutoff", "degree_norm", "label_std"):
            value = _check_float(name, getattr(self, name))
            if value <= 0:
                raise ConfigError(f"model.{name} must be > 0, got {value}")
            setattr(self, name, value)
        self.label_mean = _check_float("label_mean", self.label_mean)
        self.irrep_dropout = _check_float("irrep_dropout", self.irrep_dropout)
        if not 0.0 <= self.irrep_dropout < 1.0:
            raise ConfigError(f"model.irrep_dropout must be in [0, 1), got {self.irrep_dropout}")
        if self.sh_backend not in SH_BACKENDS:
            raise ConfigError(
                f"model.sh_backend must be one of {', '.join(SH_BACKENDS)}, "
                f"got {quoted(self.sh_backend)}"
            )
        if self.tensor_product not in TENSOR_PRODUCTS:
            raise ConfigError(
                f"model.tensor_product must be one of {', '.join(TENSOR_PRODUCTS)}, "
                f"got {quoted(self.tensor_product)}"
            )
        if self.tensor_product == "cueq":  # fail at load, before data and training start
            from irrepscope.model.cueq_message import require_cuequivariance

            require_cuequivariance()
        for name, choices in (("aggregate", AGGREGATE), ("energy_reference", ENERGY_REFERENCES),
                              ("readout_init", READOUT_INITS)):
            if getattr(self, name) not in choices:
                raise ConfigError(f"model.{name} must be one of {', '.join(choices)}, "
                                  f"got {quoted(getattr(self, name))}")
        if self.aggregate == "always" and self.tensor_product != "fused":
            raise ConfigError(f"model.aggregate 'always' needs model.tensor_product 'fused' "
                              f"(got {quoted(self.tensor_product)}); use aggregate: auto or never")
        if not isinstance(self.gate, bool):
            raise ConfigError(f"model.gate must be true or false, got {quoted(self.gate)}")
        return self

    @property
    def feature_orders(self) -> list[int]:
        """Orders of the hidden features: ``hidden_orders``, or ``orders`` when it is null."""
        return list(self.orders if self.hidden_orders is None else self.hidden_orders)


def _validate_orders(orders: Any, name: str = "model.orders") -> list[int]:
    if isinstance(orders, (str, bytes)) or not hasattr(orders, "__iter__"):
        raise ConfigError(f"{name} must be a list of integers like [0, 1, 2], "
                          f"got {quoted(orders)}")
    values = list(orders)
    if not values:
        raise ConfigError(f"{name} is empty; give at least [0]")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must contain integers, got {quoted(value)} in "
                              f"{quoted(values)}")
        if not 0 <= value <= MAX_ORDER:
            raise ConfigError(
                f"{name}: order {value} is outside 0..{MAX_ORDER} (in {quoted(values)})"
            )
    if len(set(values)) != len(values):
        raise ConfigError(f"{name} must be distinct, got {quoted(values)}")
    if 0 not in values:
        raise ConfigError(
            f"{name} must include 0 (the energy is read out from the l=0 channels), "
            f"got {values}"
        )
    return sorted(values)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"model.{name} must be an integer, got {quoted(value)}")
    if value < minimum:
        raise ConfigError(f"model.{name} must be >= {minimum}, got {value}")


def _check_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"model.{name} must be a number, got {quoted(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(f"model.{name} must be finite, got {value}")
    return value


def model_config_of(config: Any) -> ModelConfig:
    """The ModelConfig inside ``config``: a ModelConfig, a mapping, or an object with ``.model``."""
    if isinstance(config, ModelConfig):
        return config
    if isinstance(config, Mapping):
        return ModelConfig.from_dict(config)
    inner = getattr(config, "model", None)
    if inner is not None:
        return model_config_of(inner)
    raise ConfigError(
        f"expected a ModelConfig or a run config with .model, got {type(config).__name__}"
    )
