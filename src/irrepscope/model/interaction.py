"""One equivariant convolution block, and the edge features (SH + radial basis) all blocks share.

Edge convention (PyG): ``edge_index`` [2, E] holds (source, target); messages flow source ->
target. The edge vector is ``pos[source] - pos[target]`` (from the receiving atom to its
neighbour, as in the reference model), in Å.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from e3nn import o3
from e3nn.nn import Activation, Gate
from torch import nn

from irrepscope.model.edge_layout import EdgeLayout
from irrepscope.model.message_steps import make_edge_message
from irrepscope.model.radial import bessel_basis


def edge_vectors(pos: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """pos [N, 3], edge_index [2, E] -> pos[source] - pos[target], [E, 3]."""
    return pos[edge_index[0]] - pos[edge_index[1]]


def spherical_harmonics(orders: Sequence[int], vectors: torch.Tensor,
                        backend: str = "auto") -> torch.Tensor:
    """[E, 3] -> [E, sum(2l+1)]: irrepscope SH of the unit vectors, 'integral' normalization.

    ``backend`` is one of 'auto', 'torch', 'triton', 'e3nn' (see ``irrepscope.sph``).
    """
    from irrepscope.sph import spherical_harmonics as _sh

    return _sh(list(orders), vectors, normalize=True, normalization="integral", backend=backend)


def edge_features(pos: torch.Tensor, edge_index: torch.Tensor, orders: Sequence[int],
                  num_basis: int, cutoff: float,
                  sh_backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """(sh [E, sum(2l+1)], radial basis [E, num_basis]) of every edge, shared by all blocks."""
    vectors = edge_vectors(pos, edge_index)
    sh = spherical_harmonics(orders, vectors, sh_backend)
    return sh, bessel_basis(vectors.norm(dim=-1), num_basis, cutoff)


def gated_irreps(irreps_out: o3.Irreps) -> o3.Irreps:
    """Message irreps a ``Gate`` turns into ``irreps_out``: scalars + one gate per l>0 channel."""
    scalars = o3.Irreps([(mul, ir) for mul, ir in irreps_out if ir.l == 0])
    gated = o3.Irreps([(mul, ir) for mul, ir in irreps_out if ir.l > 0])
    return (scalars + o3.Irreps(f"{gated.num_irreps}x0e") + gated) if gated.num_irreps else scalars


def _nonlinearity(irreps_out: o3.Irreps) -> nn.Module:
    """NequIP-style gate: SiLU on scalars, sigmoid gates on every l>0 channel."""
    scalars = o3.Irreps([(mul, ir) for mul, ir in irreps_out if ir.l == 0])
    gated = o3.Irreps([(mul, ir) for mul, ir in irreps_out if ir.l > 0])
    if not gated.num_irreps:
        return Activation(scalars, [torch.nn.functional.silu])
    return Gate(scalars, [torch.nn.functional.silu], f"{gated.num_irreps}x0e", [torch.sigmoid],
                gated)


class IrrepDropout(nn.Module):
    """Drops whole (2l+1)-vectors (one channel of one l, per atom) with probability p."""

    def __init__(self, irreps: o3.Irreps | str, p: float) -> None:
        super().__init__()
        self.irreps, self.p = o3.Irreps(irreps), float(p)
        owner = [torch.full((ir.dim,), i) for i, ir in enumerate(
            ir for mul, ir in self.irreps for _ in range(mul))]
        self.register_buffer("column_owner", torch.cat(owner) if owner else
                             torch.zeros(0, dtype=torch.long), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, irreps.dim] -> same shape; identity in eval mode or when p == 0."""
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand(x.shape[0], self.irreps.num_irreps, device=x.device) >= self.p
        mask = keep.to(x.dtype) / (1.0 - self.p)
        return x * mask[:, self.column_owner]

    def extra_repr(self) -> str:
        return f"p={self.p}"


class InteractionBlock(nn.Module):
    """Convolution: message(x[source], sh, radial) summed at target / degree_norm (+ residual).

    forward(x [N, irreps_in.dim], edge_index [2, E], sh [E, irreps_sh.dim], radial [E, num_basis],
    edge_operand=None, layout=None) -> [N, irreps_out.dim]; ``edge_operand`` is the message
    step's SH-only operand when the caller shares it between blocks (see
    ``EdgeMessage.edge_operand``), ``layout`` the batch's ``EdgeLayout`` when the edges are in its
    order. ``tensor_product`` names the message step; with 'fused', ``aggregate`` ('auto',
    'always', 'never') chooses between per-edge weights and aggregate-then-weight
    (``irrepscope.model.aggregate``). Optional (off by default): gate nonlinearity, irrep-wise
    dropout.
    """

    def __init__(self, irreps_in: o3.Irreps | str, irreps_sh: o3.Irreps | str,
                 irreps_out: o3.Irreps | str, *, num_basis: int, radial_hidden: int,
                 degree_norm: float, tensor_product: str = "e3nn", aggregate: str = "never",
                 residual: bool = False, gate: bool = False, irrep_dropout: float = 0.0) -> None:
        super().__init__()
        self.irreps_in, self.irreps_sh = o3.Irreps(irreps_in), o3.Irreps(irreps_sh)
        self.irreps_out = o3.Irreps(irreps_out)
        self.degree_norm = float(degree_norm)
        if residual and self.irreps_in != self.irreps_out:
            raise ValueError(
                f"residual needs equal irreps, got {self.irreps_in} -> {self.irreps_out}"
            )
        self.residual = residual
        message_irreps = gated_irreps(self.irreps_out) if gate else self.irreps_out
        kind, options = tensor_product, {}
        if tensor_product == "fused" and aggregate != "never":
            kind, options = "aggregate", {"mode": aggregate}
        self.message = make_edge_message(kind, self.irreps_in, self.irreps_sh, message_irreps,
                                         num_basis, radial_hidden, **options)
        self.nonlinearity = _nonlinearity(self.irreps_out) if gate else None
        self.dropout = IrrepDropout(self.irreps_out, irrep_dropout) if irrep_dropout > 0 else None

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, sh: torch.Tensor,
                radial: torch.Tensor, edge_operand: torch.Tensor | None = None,
                layout: EdgeLayout | None = None) -> torch.Tensor:
        out = self.message.aggregate(x, edge_index, sh, radial, edge_operand,
                                     layout) / self.degree_norm
        if self.nonlinearity is not None:
            out = self.nonlinearity(out)
        if self.dropout is not None:
            out = self.dropout(out)
        return out + x if self.residual else out
