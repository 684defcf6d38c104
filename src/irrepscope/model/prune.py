"""A smaller model from a trained one: orders dropped, every remaining weight copied path by path.

Dropping order l from the **hidden features** removes l's channels from every block's output
(and their gates, with ``gate``) and every tensor-product path that reads or writes them. The
remaining paths keep their weights, rescaled by ``alpha_old / alpha_new`` (e3nn's 'element'
path normalisation divides each path by the number of paths into its output, which shrinks), so
the pruned model computes exactly the original with l's features zeroed in every block: the
``ablation`` of ``irrepscope.analysis.utilization``. Dropping l from the **spherical harmonics**
too (``drop_sh``) also removes the paths through the edges' l-th harmonic; the remaining paths
are rescaled the same way, so the pruned model is the original minus those paths' contributions
(not an ablation any more: what it costs shows in the error before fine-tuning).

Copied unchanged: the atom embedding, every radial MLP's first layer, the readout (it reads the
l=0 channels only), the head and the energy reference. Weights move in e3nn's parameter layout
(``message_steps.convert_state_dict``) and are converted to the pruned model's message step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import torch
from e3nn import o3

from irrepscope.errors import ConfigError
from irrepscope.model.cg_paths import path_alphas
from irrepscope.model.config import ModelConfig
from irrepscope.model.gnn import EquivariantGNN, build_model
from irrepscope.model.message import EdgeMessage
from irrepscope.model.message_steps import convert_state_dict, parameter_layout

ChannelKey = tuple[Any, ...]


def pruned_config(config: ModelConfig, drop: Iterable[int], drop_sh: bool = False) -> ModelConfig:
    """``config`` without the orders ``drop`` in its hidden features (and SH, with ``drop_sh``).

    Raises ``ConfigError`` for: no order, order 0 (the readout reads the l=0 channels), an order
    the model does not have.
    """
    drop = sorted(set(int(l) for l in drop))
    hidden, sh = config.feature_orders, list(config.orders)
    if not drop:
        raise ConfigError("prune: no order to drop; give the orders (e.g. --drop 3,4) or --auto")
    if 0 in drop:
        raise ConfigError(f"prune: order 0 cannot be dropped: the readout reads the energy from "
                          f"the l=0 channels (the model's hidden orders are {hidden}); drop "
                          f"orders > 0 only")
    known = set(hidden) | (set(sh) if drop_sh else set())
    missing = [l for l in drop if l not in known]
    if missing:
        where = f"hidden orders {hidden}" + (f" or spherical-harmonic orders {sh}"
                                            if drop_sh else "")
        raise ConfigError(f"prune: order(s) {missing} are not in the run's {where}; choose "
                          f"among {sorted(known - {0})}")
    new_hidden = [l for l in hidden if l not in drop]
    new_sh = [l for l in sh if l not in drop] if drop_sh else sh
    return replace(config, orders=new_sh,
                   hidden_orders=None if new_hidden == new_sh else new_hidden).validate()


def prune_model(model: EquivariantGNN, drop: Iterable[int],
                drop_sh: bool = False) -> EquivariantGNN:
    """A new model without the orders ``drop`` (see the module text), in ``model``'s dtype and
    mode, with every remaining weight copied from ``model``."""
    config = pruned_config(model.config, drop, drop_sh)
    pruned = build_model(config, dtype=model.embedding.weight.dtype)
    pruned.load_state_dict(pruned_state_dict(model, pruned))
    return pruned.train(model.training)


def pruned_state_dict(source: EquivariantGNN, target: EquivariantGNN) -> dict[str, torch.Tensor]:
    """The state dict for ``target`` (a model with a subset of ``source``'s orders) that copies
    every remaining weight of ``source``, message steps path by path."""
    state = convert_state_dict(source, "e3nn")
    out: dict[str, torch.Tensor] = {}
    for name, module in target.named_modules():
        if parameter_layout(module) is None:
            continue
        old = source.get_submodule(name)
        prefix = f"{name}."
        index, scale = path_columns(old, module, source.config.gate)
        weight_out = state.pop(prefix + "radial.weight_out")
        weight_out = weight_out[:, index.to(weight_out.device)] * scale.to(weight_out)
        out.update(_in_layout(module, prefix, state.pop(prefix + "radial.weight_in"), weight_out))
    parameters = {name for name, _ in target.named_parameters()}
    for key, value in target.state_dict().items():
        if key in out:
            continue
        if key in state and state[key].shape == value.shape:
            out[key] = state[key]
        elif key in parameters:
            raise RuntimeError(f"prune: parameter {key} of the pruned model has no counterpart "
                               f"of shape {tuple(value.shape)} in the original")
        else:  # a constant of the smaller irreps (e.g. a gate's output mask): the target's own
            out[key] = value
    return out


def _in_layout(module: torch.nn.Module, prefix: str, weight_in: torch.Tensor,
               weight_out: torch.Tensor) -> dict[str, torch.Tensor]:
    """The two radial weights (e3nn layout) as ``module``'s state-dict entries."""
    if parameter_layout(module) == "e3nn":
        return {prefix + "radial.weight_in": weight_in, prefix + "radial.weight_out": weight_out}
    perm = module.column_permutation.to(weight_out.device)  # fused column j = e3nn column perm[j]
    return {prefix + "weight_in": weight_in, prefix + "weight_out": weight_out[:, perm]}


def channel_keys(irreps: o3.Irreps, gated_from: o3.Irreps | None = None) -> list[list[ChannelKey]]:
    """A key per channel of every entry of ``irreps``, equal for the same channel in a model
    with fewer orders. ``gated_from``: the block output a gated message step's ``irreps`` come
    from (scalars, then one gate per channel of every l > 0 entry, then those entries)."""
    if gated_from is None:
        return [[(str(ir), c) for c in range(mul)] for mul, ir in irreps]
    scalars = [[(str(ir), c) for c in range(mul)] for mul, ir in gated_from if ir.l == 0]
    gated = [[(str(ir), c) for c in range(mul)] for mul, ir in gated_from if ir.l > 0]
    gates = [("gate", str(ir), c) for mul, ir in gated_from if ir.l > 0 for c in range(mul)]
    keys = scalars + ([gates] if gates else []) + gated
    if [len(k) for k in keys] != [mul for mul, _ in irreps]:
        raise RuntimeError(f"{irreps} is not the gated message irreps of {gated_from}")
    return keys


def _entry_map(old: list[list[ChannelKey]],
               new: list[list[ChannelKey]]) -> list[tuple[int, list[int]]]:
    """Per new entry: (old entry index, old channel index of each of its channels)."""
    where = {key: (i, c) for i, keys in enumerate(old) for c, key in enumerate(keys)}
    out = []
    for keys in new:
        places = [where[key] for key in keys]
        entries = {i for i, _ in places}
        if len(entries) != 1:
            raise RuntimeError(f"channels {keys} come from several entries of the original")
        out.append((entries.pop(), [c for _, c in places]))
    return out


def path_columns(old: EdgeMessage, new: EdgeMessage,
                 gate: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(column index into ``old``'s e3nn-layout ``weight_out``, scale) of every weight column of
    ``new`` (e3nn layout), for message steps whose irreps are subsets of ``old``'s.

    The scale is alpha_old / alpha_new of the column's path (e3nn 'element' normalisation).
    ``gate``: the output irreps are gated message irreps (``interaction.gated_irreps``).
    """
    def keys(step: EdgeMessage) -> tuple[list[list[ChannelKey]], ...]:
        out = step.irreps_out
        gated_from = _ungated(out) if gate else None
        return channel_keys(step.irreps_in), channel_keys(step.irreps_sh), \
            channel_keys(out, gated_from)

    maps = [_entry_map(a, b) for a, b in zip(keys(old), keys(new), strict=True)]
    old_paths = {(p.i_in, p.i_sh, p.i_out): k for k, p in enumerate(old.paths)}
    old_offsets = torch.tensor([0] + [p.num_weights for p in old.paths]).cumsum(0).tolist()
    old_alpha = path_alphas(old.irreps_in, old.irreps_sh, old.irreps_out, old.paths)
    new_alpha = path_alphas(new.irreps_in, new.irreps_sh, new.irreps_out, new.paths)
    index, scale = [], []
    for p, alpha in zip(new.paths, new_alpha, strict=True):
        (i1, u), (i2, v), (i3, w) = maps[0][p.i_in], maps[1][p.i_sh], maps[2][p.i_out]
        k = old_paths[(i1, i2, i3)]
        mul_v, mul_w = old.irreps_sh[i2].mul, old.irreps_out[i3].mul
        block = (torch.tensor(u)[:, None, None] * mul_v + torch.tensor(v)[None, :, None]) \
            * mul_w + torch.tensor(w)[None, None, :]
        index.append(old_offsets[k] + block.reshape(-1))
        scale.append(torch.full((block.numel(),), old_alpha[k] / alpha, dtype=torch.float64))
    if not index:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.float64)
    return torch.cat(index), torch.cat(scale)


def _ungated(message_irreps: o3.Irreps) -> o3.Irreps:
    """The block output irreps whose gated message irreps are ``message_irreps``."""
    scalars = [(mul, ir) for mul, ir in message_irreps if ir.l == 0]
    gated = [(mul, ir) for mul, ir in message_irreps if ir.l > 0]
    return o3.Irreps(scalars[:1] + gated)


def unused_sh_orders(model: EquivariantGNN) -> list[int]:
    """Spherical-harmonic orders that feed no tensor-product path of any block (by parity or
    order, the hidden orders cannot couple to them): computed, but without effect."""
    used = {step.irreps_sh[p.i_sh].ir.l for step in (b.message for b in model.blocks)
            for p in step.paths}
    return [l for l in model.config.orders if l not in used]
