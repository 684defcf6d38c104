"""The message-step implementations by name, and checkpoint conversion between their layouts.

Every implementation computes ``E3nnEdgeMessage``'s function (``irrepscope.model.message``);
``interaction.py`` asks this registry by name and the implementations never import each other
through it. Two parameter layouts exist: e3nn's (``radial.weight_in``, ``radial.weight_out``:
'e3nn', 'cueq') and the fused one (``weight_in``, ``weight_out`` with permuted columns: 'fused',
'aggregate'); ``convert_state_dict`` moves a model's checkpoint between them.
"""

from __future__ import annotations

from typing import Any

import torch
from e3nn import o3

from irrepscope.errors import ConfigError
from irrepscope.model.aggregate import AggregatedEdgeMessage
from irrepscope.model.cueq_message import CueqEdgeMessage
from irrepscope.model.message import E3nnEdgeMessage, EdgeMessage
from irrepscope.model.tensor_product import (
    FusedEdgeMessage,
    convert_e3nn_to_fused,
    convert_fused_to_e3nn,
)

# name -> (class, parameter layout)
MESSAGE_STEPS: dict[str, tuple[type[EdgeMessage], str]] = {
    "e3nn": (E3nnEdgeMessage, "e3nn"),
    "fused": (FusedEdgeMessage, "fused"),
    "cueq": (CueqEdgeMessage, "e3nn"),
    "aggregate": (AggregatedEdgeMessage, "fused"),
}


def make_edge_message(kind: str, irreps_in: o3.Irreps | str, irreps_sh: o3.Irreps | str,
                      irreps_out: o3.Irreps | str, num_basis: int, radial_hidden: int,
                      **options: Any) -> EdgeMessage:
    """The message step named ``kind`` (a key of ``MESSAGE_STEPS``); ``options`` go to its class.

    'aggregate' takes ``mode`` ('auto': the cost model picks per call, 'always').
    """
    if kind not in MESSAGE_STEPS:
        raise ConfigError(f"message step must be one of {', '.join(MESSAGE_STEPS)}, got {kind!r}")
    cls, _ = MESSAGE_STEPS[kind]
    return cls(irreps_in, irreps_sh, irreps_out, num_basis, radial_hidden, **options)


def parameter_layout(module: torch.nn.Module) -> str | None:
    """'e3nn' or 'fused' for a message step (the most derived registered class), else None."""
    for cls in type(module).__mro__:
        for registered, layout in MESSAGE_STEPS.values():
            if cls is registered:
                return layout
    return None


def convert_state_dict(model: torch.nn.Module, to: str) -> dict[str, torch.Tensor]:
    """``model``'s state dict with every message step converted to the layout of ``to``.

    ``to`` names a message step (a ``model.tensor_product`` value, or 'aggregate'): the result
    loads into the same architecture built with it (checkpoints move freely between
    implementations; every other entry is copied unchanged).
    """
    if to not in MESSAGE_STEPS:
        raise ConfigError(f"convert_state_dict: to must be one of {', '.join(MESSAGE_STEPS)}, "
                          f"got {to!r}")
    target = MESSAGE_STEPS[to][1]
    state = {key: value.detach().clone() for key, value in model.state_dict().items()}
    for name, module in model.named_modules():
        layout = parameter_layout(module)
        if layout is None or layout == target:
            continue
        prefix = f"{name}." if name else ""
        for key in module.state_dict():
            del state[prefix + key]
        converted = (convert_e3nn_to_fused(module) if target == "fused"
                     else convert_fused_to_e3nn(module))
        state.update({prefix + key: value for key, value in converted.items()})
    return state
