"""`irrepscope model info`: irreps of every block, tensor-product paths, parameter counts.

Counted from the config by arithmetic (no model is built, so even L=[0..10] answers at once);
tests check the numbers against ``sum(p.numel())`` of built models. ``check_model_fits`` uses
the count to refuse, before any allocation, a model whose weights exceed the machine's memory.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from e3nn import o3

from irrepscope.model.config import model_config_of
from irrepscope.model.heads import TargetHeads
from irrepscope.model.interaction import gated_irreps
from irrepscope.model.irreps import hidden_irreps, sh_irreps
from irrepscope.model.message import tensor_product_paths
from irrepscope.model.message_cost import break_even_degree, pair_sizes


def message_step_choice(config: Any, irreps_in: o3.Irreps, irreps_sh: o3.Irreps,
                        message_irreps: o3.Irreps) -> tuple[str, float | None]:
    """(text, edges per atom from which a block aggregates before weighting, or None: never)."""
    c = model_config_of(config)
    if c.tensor_product != "fused" or c.aggregate == "never":
        return "per-edge weights", None
    if c.aggregate == "always":
        return "aggregate-then-weight", 0.0
    degree = break_even_degree(pair_sizes(irreps_in, irreps_sh, message_irreps), c.hidden)
    if degree is None:
        return "per-edge weights (cost model: aggregation never cheaper)", None
    return (f"cost model: per-edge weights below {degree:.1f} edges/atom, "
            f"aggregate-then-weight from there"), degree


def _block_info(index: int, irreps_in: o3.Irreps, irreps_sh: o3.Irreps, irreps_out: o3.Irreps,
                residual: bool, c: Any) -> dict[str, Any]:
    message_irreps = gated_irreps(irreps_out) if c.gate else irreps_out
    paths = tensor_product_paths(irreps_in, irreps_sh, message_irreps)
    weights = sum(p.num_weights for p in paths)
    choice, degree = message_step_choice(c, irreps_in, irreps_sh, message_irreps)
    return {
        "index": index,
        "name": "input" if index == 0 else f"hidden_{index}",
        "irreps_in": str(irreps_in),
        "irreps_sh": str(irreps_sh),
        "irreps_out": str(irreps_out),
        "message_irreps": str(message_irreps),
        "residual": residual,
        "paths": [f"{irreps_in[p.i_in]} x {irreps_sh[p.i_sh]} -> {message_irreps[p.i_out]}"
                  for p in paths],
        "num_paths": len(paths),
        "weights_per_edge": weights,
        "parameters": c.num_basis * c.hidden + c.hidden * weights,
        "message_step": choice,
        "aggregate_from_edges_per_atom": degree,
    }


def model_info(config: Any) -> dict[str, Any]:
    """Summary dict of the model a ModelConfig / RunConfig describes; total under 'parameters'
    (with a run config's ``train.targets``, its charge/dipole/quadrupole heads included)."""
    targets = [t for t in getattr(getattr(config, "train", None), "targets", None) or []
               if t != "energy"]
    c = model_config_of(config).validate()
    irreps_embedding = o3.Irreps(f"{c.embedding_dim}x0e")
    irreps_sh, irreps_hidden = sh_irreps(c.orders), hidden_irreps(c.feature_orders, c.hidden)
    blocks = [_block_info(0, irreps_embedding, irreps_sh, irreps_hidden, False, c)]
    blocks += [_block_info(i, irreps_hidden, irreps_sh, irreps_hidden, True, c)
               for i in range(1, c.num_layers + 2)]
    embedding = c.num_elements * c.embedding_dim
    readout = sum(mul * c.output_dim for mul, ir in irreps_hidden if ir == o3.Irrep("0e"))
    head = c.output_dim + 1
    heads = TargetHeads(irreps_hidden, targets, c.num_elements) if targets else None
    target_heads = sum(p.numel() for p in heads.parameters()) if heads is not None else 0
    return {
        "orders": list(c.orders),
        "hidden_orders": c.feature_orders,
        "hidden": c.hidden,
        "num_layers": c.num_layers,
        "num_blocks": len(blocks),
        "tensor_product": c.tensor_product,
        "aggregate": c.aggregate,
        "sh_backend": c.sh_backend,
        "gate": c.gate,
        "irrep_dropout": c.irrep_dropout,
        "embedding_irreps": str(irreps_embedding),
        "sh_irreps": str(irreps_sh),
        "hidden_irreps": str(irreps_hidden),
        "hidden_dim": irreps_hidden.dim,
        "blocks": blocks,
        "embedding_parameters": embedding,
        "readout_parameters": readout,
        "head_parameters": head,
        "target_heads": heads.describe() if heads is not None else {},
        "target_head_parameters": target_heads,
        "parameters": (embedding + sum(b["parameters"] for b in blocks) + readout + head
                       + target_heads),
    }


# Training holds the weights, their gradients and AdamW's two moments: four copies.
TRAINING_COPIES = 4


def _size(num_bytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if num_bytes < 1024 or unit == "PiB":
            return f"{num_bytes:,.1f} {unit}" if unit != "B" else f"{num_bytes:,.0f} B"
        num_bytes /= 1024
    raise AssertionError("unreachable")


def memory_text(parameters: int, dtype: torch.dtype = torch.float32) -> str:
    """'6.3 MiB of float32 weights, about 25.1 MiB to train with AdamW' for a parameter count."""
    weights = parameters * torch.empty(0, dtype=dtype).element_size()
    return (f"{_size(weights)} of {str(dtype).removeprefix('torch.')} weights, about "
            f"{_size(TRAINING_COPIES * weights)} to train with AdamW")


def physical_memory_bytes() -> int | None:
    """Total RAM of this machine in bytes (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_model_fits(config: Any, dtype: torch.dtype | None = None) -> int:
    """The parameter count of ``config``'s model; ``ConfigError`` (with the numbers) when its
    weights alone would not fit in this machine's memory."""
    from irrepscope.errors import ConfigError

    info = model_info(config)
    dtype = dtype or torch.get_default_dtype()
    weights = info["parameters"] * torch.empty(0, dtype=dtype).element_size()
    memory = physical_memory_bytes()
    if memory is not None and weights > memory:
        raise ConfigError(
            f"the model of model.orders={info['orders']}, model.hidden={info['hidden']} has "
            f"{info['parameters']:,} parameters: {memory_text(info['parameters'], dtype)}; this "
            f"machine has {_size(memory)} of memory. Lower model.hidden (the count grows as "
            f"hidden squared) or use fewer model.orders; `irrepscope model info` prints the count")
    return info["parameters"]


def _hidden_orders_text(info: dict[str, Any]) -> str:
    """' (hidden orders [0, 2])' when the hidden features' orders differ from L, else ''."""
    hidden = info.get("hidden_orders", info["orders"])
    return "" if hidden == info["orders"] else f" (hidden orders {hidden})"


def format_model_info(info: dict[str, Any]) -> str:
    """Human-readable text of ``model_info``'s dict."""
    lines = [
        f"orders L={info['orders']}{_hidden_orders_text(info)}  h={info['hidden']}  "
        f"blocks={info['num_blocks']}  "
        f"tensor_product={info['tensor_product']}  aggregate={info['aggregate']}  "
        f"sh_backend={info['sh_backend']}  "
        f"gate={info['gate']}  irrep_dropout={info['irrep_dropout']}",
        f"spherical harmonics: {info['sh_irreps']}",
        f"hidden irreps:       {info['hidden_irreps']}  (dim {info['hidden_dim']})",
        f"embedding: {info['embedding_irreps']}  {info['embedding_parameters']:,} parameters",
    ]
    previous = None
    for block in info["blocks"]:
        lines.append(
            f"block {block['index']} ({block['name']}{', residual' if block['residual'] else ''}): "
            f"{block['irreps_in']} x {block['irreps_sh']} -> {block['irreps_out']}; "
            f"{block['num_paths']} paths, {block['weights_per_edge']:,} weights/edge, "
            f"{block['parameters']:,} parameters"
        )
        lines.append(f"    message step: {block['message_step']}")
        if previous is not None and block["paths"] == previous["paths"]:
            lines.append(f"    paths as in block {previous['index']}")
        else:
            lines.extend(f"    {path}" for path in block["paths"])
            previous = block
    lines.append(f"readout: {info['hidden_irreps']} -> scalars  {info['readout_parameters']:,} "
                 f"parameters; head {info['head_parameters']:,}")
    if info.get("target_heads"):
        kinds = ", ".join(f"{t}: {kind}" for t, kind in info["target_heads"].items())
        lines.append(f"target heads: {kinds}; {info['target_head_parameters']:,} parameters")
    lines.append(f"parameters: {info['parameters']:,} ({memory_text(info['parameters'])})")
    return "\n".join(lines)
