"""The message step of a convolution: source features x edge spherical harmonics, radially weighted.

``EdgeMessage`` is the interface every implementation follows:
``forward(node_src [E, irreps_in.dim], sh [E, irreps_sh.dim], radial_basis [E, num_basis])
-> [E, irreps_out.dim]``, and ``aggregate`` sums the messages per receiving atom.
``E3nnEdgeMessage`` is the reference implementation (stock e3nn); the others
(``irrepscope.model.message_steps`` names them all) compute the same function.

Parameter layout of ``E3nnEdgeMessage`` (stable; weight converters rely on it):
- ``radial.weight_in`` [num_basis, radial_hidden], ``radial.weight_out`` [radial_hidden,
  weight_numel] (see ``RadialMLP``); these are the only entries of its state dict;
- the tensor product has no parameters; the per-edge weight vector of length ``weight_numel`` is
  laid out path by path in the order of ``tensor_product_paths`` (e3nn's
  ``FullyConnectedTensorProduct`` order), each path's block flattened as [mul_in, mul_sh, mul_out].
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from e3nn import o3
from torch import nn

from irrepscope.errors import ConfigError
from irrepscope.model.edge_layout import EdgeLayout
from irrepscope.model.radial import RadialMLP


class Path(NamedTuple):
    """One tensor-product path: irrep entries (i_in, i_sh, i_out) and its number of weights."""

    i_in: int
    i_sh: int
    i_out: int
    num_weights: int


def tensor_product_paths(
    irreps_in: o3.Irreps | str, irreps_sh: o3.Irreps | str, irreps_out: o3.Irreps | str
) -> list[Path]:
    """Every allowed path of a fully connected tensor product, in e3nn's instruction order."""
    irreps_in, irreps_sh = o3.Irreps(irreps_in), o3.Irreps(irreps_sh)
    irreps_out = o3.Irreps(irreps_out)
    return [
        Path(i1, i2, i3, mul1 * mul2 * mul3)
        for i1, (mul1, ir1) in enumerate(irreps_in)
        for i2, (mul2, ir2) in enumerate(irreps_sh)
        for i3, (mul3, ir3) in enumerate(irreps_out)
        if ir3 in ir1 * ir2
    ]


def constants_out_of_state_dict(module: nn.Module) -> None:
    """Every buffer of ``module`` (CG constants, masks) made non-persistent: not in checkpoints."""
    for submodule in module.modules():
        for name, buffer in list(submodule.named_buffers(recurse=False)):
            delattr(submodule, name)
            submodule.register_buffer(name, buffer, persistent=False)


class EdgeMessage(nn.Module):
    """Interface: per-edge message from source features, edge SH and the radial basis."""

    def __init__(self, irreps_in: o3.Irreps | str, irreps_sh: o3.Irreps | str,
                 irreps_out: o3.Irreps | str, num_basis: int, radial_hidden: int) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_sh = o3.Irreps(irreps_sh)
        self.irreps_out = o3.Irreps(irreps_out)
        self.num_basis = num_basis
        self.radial_hidden = radial_hidden
        self.paths = tensor_product_paths(self.irreps_in, self.irreps_sh, self.irreps_out)
        self.weight_numel = sum(p.num_weights for p in self.paths)
        unreached = set(range(len(self.irreps_out))) - {p.i_out for p in self.paths}
        if unreached:
            names = ", ".join(str(self.irreps_out[i]) for i in sorted(unreached))
            raise ConfigError(
                f"no tensor-product path reaches output irreps {names} from "
                f"{self.irreps_in} x {self.irreps_sh}; choose orders that can couple"
            )

    def forward(self, node_src: torch.Tensor, sh: torch.Tensor, radial_basis: torch.Tensor,
                edge_operand: torch.Tensor | None = None) -> torch.Tensor:
        """[E, irreps_in.dim], [E, irreps_sh.dim], [E, num_basis] -> [E, irreps_out.dim].

        ``edge_operand``: this module's ``edge_operand(sh)``, when the caller shares it between
        modules of equal ``edge_operand_key()``; computed here when None.
        """
        raise NotImplementedError

    def aggregate(self, x: torch.Tensor, edge_index: torch.Tensor, sh: torch.Tensor,
                  radial_basis: torch.Tensor, edge_operand: torch.Tensor | None = None,
                  layout: EdgeLayout | None = None) -> torch.Tensor:
        """x [N, irreps_in.dim], edge_index [2, E] -> messages summed per target, [N, out dim].

        ``layout``: the batch's ``EdgeLayout`` when the edges are in its order (used by
        implementations that sum before weighting; this one ignores it).
        """
        messages = self(x[edge_index[0]], sh, radial_basis, edge_operand)
        out = torch.zeros(x.shape[0], messages.shape[-1], dtype=messages.dtype, device=x.device)
        return out.index_add(0, edge_index[1], messages)

    def aggregates(self, num_edges: int, num_nodes: int) -> bool:
        """Whether ``aggregate`` sums before weighting for E edges into N atoms (needs a layout)."""
        return False

    def edge_operand_key(self, aggregated: bool = False) -> tuple | None:
        """Modules with equal keys compute the same ``edge_operand(sh)`` (None: nothing shared).

        ``aggregated``: the key of the operand ``aggregate`` uses when it sums before weighting.
        """
        return None

    def edge_operand(self, sh: torch.Tensor, aggregated: bool = False) -> torch.Tensor | None:
        """Per-edge tensor that depends on the SH only (None for implementations without one)."""
        return None

    def extra_repr(self) -> str:
        return (f"{self.irreps_in} x {self.irreps_sh} -> {self.irreps_out}, "
                f"paths={len(self.paths)}, weights/edge={self.weight_numel}")


class E3nnEdgeMessage(EdgeMessage):
    """Radial MLP [num_basis -> radial_hidden -> weight_numel] + e3nn's fully connected TP."""

    def __init__(self, irreps_in: o3.Irreps | str, irreps_sh: o3.Irreps | str,
                 irreps_out: o3.Irreps | str, num_basis: int, radial_hidden: int) -> None:
        super().__init__(irreps_in, irreps_sh, irreps_out, num_basis, radial_hidden)
        self.tp = o3.FullyConnectedTensorProduct(
            self.irreps_in, self.irreps_sh, self.irreps_out,
            shared_weights=False, internal_weights=False,
        )
        if self.tp.weight_numel != self.weight_numel:  # e3nn changed its path rule
            raise RuntimeError(f"e3nn reports {self.tp.weight_numel} weights, expected "
                               f"{self.weight_numel}")
        self.radial = RadialMLP(num_basis, radial_hidden, self.weight_numel)
        constants_out_of_state_dict(self.tp)  # checkpoints hold the two radial weights only

    def forward(self, node_src: torch.Tensor, sh: torch.Tensor, radial_basis: torch.Tensor,
                edge_operand: torch.Tensor | None = None) -> torch.Tensor:
        """[E, irreps_in.dim], [E, irreps_sh.dim], [E, num_basis] -> [E, irreps_out.dim]."""
        return self.tp(node_src, sh, self.radial(radial_basis))

