"""Fused message step: radial MLP + fully connected tensor product with per-edge weights.

``FusedEdgeMessage`` computes exactly the function of ``E3nnEdgeMessage`` (radial MLP
[num_basis -> radial_hidden -> weight_numel], SiLU rescaled to unit second moment, no biases,
feeding e3nn's ``FullyConnectedTensorProduct(shared_weights=False)``), organised for speed.
Paths are grouped into pairs (input entry i, output entry o); per pair, with u, w the
multiplicities, d1, d3 the dimensions and r the pair's paths (x SH multiplicity):

1. ``hidden = silu(basis @ weight_in / sqrt(num_basis))`` [E, h], computed once.
2. Per-edge weights of the pair ``W = hidden @ weight_out[:, pair]`` [E, u, r w] (``weight_out``
   is stored pair by pair: a column permutation of e3nn's layout), then one batched product
   over edges ``y[e] = x_i[e]^T [d1, u] @ W[e]`` = [E, (d1, r), w], every path of the pair at once.
   For scalar inputs (d1 = 1: the 64x0e input block, the l=0 entry) the last MLP layer is folded
   instead: ``y = (hidden (x) x_i) [E, h u] @ weight_out[:, pair]`` as one wide matrix product,
   the same multiply-adds without the [E, weights] tensor.
3. ``sh @ cg_matrix`` gives per-edge transposed Clebsch-Gordan matrices S^T [E, d3, (d1, r)]
   (e3nn's wigner_3j with its 'component'/'element' path normalisation and the MLP's constant
   factors folded in), and ``out_o^T += S^T y`` (a batched product with the w channels as output
   columns: MKL's small batched products run faster with the wider side as output columns than
   as y^T S) sums the pair into its output entry; one transpose per output entry restores
   e3nn's layout. ``sh @ cg_matrix`` depends on the SH only: ``edge_operand(sh)`` computes it and
   the model shares it between blocks with equal ``edge_operand_key()`` (all hidden blocks).

No slice of an activation appears in the autograd graph (only ``torch.split`` of parameters and
inputs, whose backward is one concatenation), so the backward allocates no zero-filled
full-size gradients (e3nn's per-path weight slicing does). Contracting x before the SH is the
cheaper order when inputs have lower orders than outputs (the input block), equal otherwise.
Folding the last MLP layer into the contraction for l1 > 0 was tried and rejected: it multiplies
that layer's multiply-adds by 2 l1 + 1 (or 2 l3 + 1 on the other side), and the denser product did
not make up for it, not even for l1 = 1, 2.

``torch.compile(fullgraph=True)`` traces the module without graph breaks (all sizes are static
Python ints; tested). What inductor's code adds on CPU is measured by ``irrepscope bench train``
(docs/benchmarks.md): the step is dominated by batched matrix products that inductor hands to the
same BLAS calls.
"""

from __future__ import annotations

import math

import torch
from e3nn import o3

from irrepscope.model.cg_paths import build_plan, multiply_adds_per_edge
from irrepscope.model.message import EdgeMessage
from irrepscope.model.radial import silu_second_moment_scale


class FusedEdgeMessage(EdgeMessage):
    """Same function and parameters as ``E3nnEdgeMessage``, in a fused, grouped layout.

    Parameters: ``weight_in`` [num_basis, radial_hidden] (same as e3nn's ``radial.weight_in``)
    and ``weight_out`` [radial_hidden, weight_numel] (e3nn's ``radial.weight_out`` with columns
    permuted by ``column_permutation``), both initialised N(0, 1) as in e3nn.
    """

    def __init__(self, irreps_in: o3.Irreps | str, irreps_sh: o3.Irreps | str,
                 irreps_out: o3.Irreps | str, num_basis: int, radial_hidden: int) -> None:
        super().__init__(irreps_in, irreps_sh, irreps_out, num_basis, radial_hidden)
        self.plan = build_plan(self.irreps_in, self.irreps_sh, self.irreps_out,
                               scale=silu_second_moment_scale() / math.sqrt(radial_hidden))
        self.weight_in = torch.nn.Parameter(torch.randn(num_basis, radial_hidden))
        self.weight_out = torch.nn.Parameter(torch.randn(radial_hidden, self.weight_numel))
        self.register_buffer("column_permutation", self.plan.perm, persistent=False)
        self.register_buffer("cg_matrix", self.plan.cg_matrix, persistent=False)
        self._in_dims = [mul * d for mul, d in self.plan.in_slices]
        self._weight_cols = [pair.weight_cols for pair in self.plan.pairs]
        self._cg_cols = [self.plan.in_slices[pair.i_in][1] * pair.rows
                         * self.plan.out_slices[pair.i_out][1] for pair in self.plan.pairs]
        # pairs from scalar inputs (2l+1 = 1) fold the last MLP layer into one wide product
        self._folded: dict[int, list[int]] = {}
        for q, pair in enumerate(self.plan.pairs):
            if self.plan.in_slices[pair.i_in][1] == 1:
                self._folded.setdefault(pair.i_in, []).append(q)

    def edge_operand_key(self, aggregated: bool = False) -> tuple:
        """Equal for every message step with these irreps and radial width (same cg_matrix)."""
        return ("fused", str(self.irreps_in), str(self.irreps_sh), str(self.irreps_out),
                self.radial_hidden)

    def edge_operand(self, sh: torch.Tensor, aggregated: bool = False) -> torch.Tensor:
        """Transposed per-edge Clebsch-Gordan matrices of every pair, flat: sh @ cg_matrix."""
        return sh @ self.cg_matrix.to(sh.dtype)

    def forward(self, node_src: torch.Tensor, sh: torch.Tensor, radial_basis: torch.Tensor,
                edge_operand: torch.Tensor | None = None) -> torch.Tensor:
        """[E, irreps_in.dim], [E, irreps_sh.dim], [E, num_basis] -> [E, irreps_out.dim]."""
        plan, num_edges = self.plan, node_src.shape[0]
        hidden = torch.nn.functional.silu(
            radial_basis @ (self.weight_in / math.sqrt(self.num_basis)))
        weight_blocks = torch.split(self.weight_out, self._weight_cols, dim=1)
        if edge_operand is None:
            edge_operand = self.edge_operand(sh)
        cg_blocks = torch.split(edge_operand, self._cg_cols, dim=1)
        x_flat = torch.split(node_src, self._in_dims, dim=1)
        ys: dict[int, torch.Tensor] = {}
        for i1, qs in self._folded.items():  # y = (hidden (x) x) @ weight_out, no [E, weights]
            mul_u = plan.in_slices[i1][0]
            z = (hidden.unsqueeze(2) * x_flat[i1].unsqueeze(1)).reshape(
                num_edges, self.radial_hidden * mul_u)
            wide = torch.cat([weight_blocks[q].reshape(self.radial_hidden * mul_u, -1)
                              for q in qs], dim=1) if len(qs) > 1 else \
                weight_blocks[qs[0]].reshape(self.radial_hidden * mul_u, -1)
            parts = torch.split(z @ wide, [self._weight_cols[q] // mul_u for q in qs], dim=1)
            ys.update(zip(qs, parts, strict=True))
        outs: list[torch.Tensor | None] = [None] * len(plan.out_slices)
        x_t: dict[int, torch.Tensor] = {}
        for q, (pair, cg) in enumerate(zip(plan.pairs, cg_blocks, strict=True)):
            mul_u, d1 = plan.in_slices[pair.i_in]
            mul_w, d3 = plan.out_slices[pair.i_out]
            if q in ys:
                y = ys[q].view(num_edges, pair.rows, mul_w)
            else:  # per-edge weights [E, u, rows*w], then one batched product over edges
                w = (hidden @ weight_blocks[q]).view(num_edges, mul_u, pair.rows * mul_w)
                if pair.i_in not in x_t:  # [E, d1, u], contiguous: one copy per entry, not pair
                    x_t[pair.i_in] = x_flat[pair.i_in].view(
                        num_edges, mul_u, d1).transpose(1, 2).contiguous()
                y = torch.bmm(x_t[pair.i_in], w).view(num_edges, d1 * pair.rows, mul_w)
            s_t = cg.view(num_edges, d3, d1 * pair.rows)  # S^T [E, m3, (m1, r)]
            outs[pair.i_out] = _add_product(outs[pair.i_out], s_t, y)
        flat = [o.transpose(1, 2).reshape(num_edges, mul * d)  # [E, m3, w] -> e3nn's [E, (w, m3)]
                for o, (mul, d) in zip(outs, plan.out_slices, strict=True) if o is not None]
        return torch.cat(flat, dim=1) if len(flat) > 1 else flat[0]

    def multiply_adds_per_edge(self) -> dict[str, int]:
        """Necessary forward multiply-adds per edge: {'radial': MLP, 'tensor_product': ...}."""
        return multiply_adds_per_edge(self.plan, self.num_basis, self.radial_hidden)


def _add_product(acc: torch.Tensor | None, s_t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """acc + s_t @ y for batches [E, d3, K] @ [E, K, w] (acc None: just the product).

    With d3 = 1 (scalar outputs) the per-edge matrix-vector product is elementwise: faster than a
    batched GEMM call per edge and its backward.
    """
    if s_t.shape[1] == 1:
        product = (s_t.transpose(1, 2) * y).sum(dim=1, keepdim=True)
        return product if acc is None else acc + product
    if acc is None:
        return torch.bmm(s_t, y)
    return torch.baddbmm(acc, s_t, y)


def convert_e3nn_to_fused(message: EdgeMessage) -> dict[str, torch.Tensor]:
    """State dict for a ``FusedEdgeMessage`` computing ``message`` (e3nn layout: e3nn or cueq)."""
    perm = build_plan(message.irreps_in, message.irreps_sh, message.irreps_out).perm
    weight_out = message.radial.weight_out.detach()
    return {"weight_in": message.radial.weight_in.detach().clone(),
            "weight_out": weight_out[:, perm.to(weight_out.device)].clone()}


def convert_fused_to_e3nn(message: FusedEdgeMessage) -> dict[str, torch.Tensor]:
    """State dict, e3nn layout (``E3nnEdgeMessage``, ``CueqEdgeMessage``), computing ``message``."""
    perm = message.column_permutation
    weight_out = torch.empty_like(message.weight_out.detach())
    weight_out[:, perm] = message.weight_out.detach()
    return {"radial.weight_in": message.weight_in.detach().clone(),
            "radial.weight_out": weight_out}

