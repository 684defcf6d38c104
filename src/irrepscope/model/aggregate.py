"""Aggregate, then weight: the fused step's function without per-edge weights.

The last radial layer is linear and messages are summed at the receiving atom, so for output
entry o, channel w, component m3 (pair = (input entry, o), u input channels, r SH rows, k the
radial hidden index, M = ``weight_out``):

    out_i[w, m3] = sum_{pair, r, u, k} M[k, (u, r, w)] A_i[m3, pair, r, u, k],
    A_i[m3, pair, r, u, k] = sum_{e -> i} hidden_e[k] T_e[m3, pair, r, u],

with T_e the unweighted Clebsch-Gordan product of the source features and the edge's SH
(T_e[m3, r, u] = sum_m1 S_e[m3, r, m1] x_e[u, m1]). The per-atom sums A are batched products per
in-degree (``irrepscope.model.edge_layout``): [atoms, T columns, d] @ [atoms, d, h]. Memory grows
with E x T columns + N x T columns x h instead of E x weights; the multiply-adds per edge drop by
about w / (2 l3 + 1) and the last layer moves to the atoms (``irrepscope.model.message_cost``).

``AggregatedEdgeMessage`` has ``FusedEdgeMessage``'s parameters in its layout (a checkpoint of
either loads into the other; ``convert_state_dict`` converts both to and from e3nn's layout) and
its per-edge ``forward``; ``aggregate`` picks, per call, per-edge weights or aggregation with the
cost model (mode 'auto') or always aggregates (mode 'always').
"""

from __future__ import annotations

import math

import torch
from e3nn import o3

from irrepscope.errors import ConfigError
from irrepscope.model.edge_layout import EdgeLayout, degree_sums, edge_layout
from irrepscope.model.message_cost import pair_sizes, prefers_aggregation
from irrepscope.model.tensor_product import FusedEdgeMessage

AGGREGATE_MODES = ("auto", "always")


class AggregatedEdgeMessage(FusedEdgeMessage):
    """``FusedEdgeMessage`` whose ``aggregate`` sums T_e (x) hidden_e per atom, then weights."""

    def __init__(self, irreps_in: o3.Irreps | str, irreps_sh: o3.Irreps | str,
                 irreps_out: o3.Irreps | str, num_basis: int, radial_hidden: int,
                 mode: str = "auto") -> None:
        super().__init__(irreps_in, irreps_sh, irreps_out, num_basis, radial_hidden)
        if mode not in AGGREGATE_MODES:
            raise ConfigError(f"aggregation mode must be one of {', '.join(AGGREGATE_MODES)}, "
                              f"got {mode!r}")
        self.mode = mode
        self.pair_sizes = pair_sizes(self.irreps_in, self.irreps_sh, self.irreps_out)
        plan = self.plan
        # CG columns per pair reordered [m3, m1, r] -> [m3, r, m1]: S_e [(m3, r), m1] per pair
        columns, offset = [], 0
        for pair in plan.pairs:
            d1, d3 = plan.in_slices[pair.i_in][1], plan.out_slices[pair.i_out][1]
            block = torch.arange(d3 * d1 * pair.rows).view(d3, d1, pair.rows)
            columns.append(offset + block.permute(0, 2, 1).reshape(-1))
            offset += block.numel()
        order = torch.cat(columns) if columns else torch.zeros(0, dtype=torch.long)
        self.register_buffer("aggregate_cg_matrix", plan.cg_matrix[:, order].contiguous(),
                             persistent=False)
        self._by_output: list[list[int]] = [[] for _ in plan.out_slices]
        for q, pair in enumerate(plan.pairs):
            self._by_output[pair.i_out].append(q)

    def aggregates(self, num_edges: int, num_nodes: int) -> bool:
        """Whether ``aggregate`` sums before weighting for E edges into N atoms."""
        if self.mode == "always":
            return True
        return prefers_aggregation(self.pair_sizes, self.radial_hidden, num_edges, num_nodes)

    def edge_operand_key(self, aggregated: bool = False) -> tuple:
        """As the fused step's, with the CG layout of the chosen formulation."""
        return (*super().edge_operand_key(), "aggregated" if aggregated else "per_edge")

    def edge_operand(self, sh: torch.Tensor, aggregated: bool = False) -> torch.Tensor:
        """sh @ CG: the fused layout, or [m3, r, m1] per pair when ``aggregated``."""
        if not aggregated:
            return super().edge_operand(sh)
        return sh @ self.aggregate_cg_matrix.to(sh.dtype)

    def aggregate(self, x: torch.Tensor, edge_index: torch.Tensor, sh: torch.Tensor,
                  radial_basis: torch.Tensor, edge_operand: torch.Tensor | None = None,
                  layout: EdgeLayout | None = None) -> torch.Tensor:
        """Messages summed per receiving atom, [N, irreps_out.dim].

        With ``layout``, the edges (``edge_index``, ``sh``, ``radial_basis``, ``edge_operand``)
        are already in its order; without, the layout is computed here.
        """
        num_nodes = x.shape[0]
        if not self.aggregates(edge_index.shape[1], num_nodes):
            return super().aggregate(x, edge_index, sh, radial_basis, edge_operand)
        if layout is None:
            layout = edge_layout(edge_index, num_nodes)
            edge_index, sh = edge_index[:, layout.order], sh[layout.order]
            radial_basis, edge_operand = radial_basis[layout.order], None
        if edge_operand is None:
            edge_operand = self.edge_operand(sh, aggregated=True)
        hidden = torch.nn.functional.silu(
            radial_basis @ (self.weight_in / math.sqrt(self.num_basis)))
        terms = self._unweighted_products(x[edge_index[0]], edge_operand)
        return self._weighted_sums(terms, hidden, layout)

    def _unweighted_products(self, x_src: torch.Tensor,
                             edge_operand: torch.Tensor) -> list[torch.Tensor]:
        """Per output entry: T_e [E, d3, (pair, r, u)] of its pairs, in pair order."""
        plan, num_edges = self.plan, x_src.shape[0]
        x_flat = torch.split(x_src, self._in_dims, dim=1)
        cg_blocks = torch.split(edge_operand, self._cg_cols, dim=1)
        terms = []
        for qs in self._by_output:
            parts = []
            for q in qs:
                pair = plan.pairs[q]
                mul_u, d1 = plan.in_slices[pair.i_in]
                d3 = plan.out_slices[pair.i_out][1]
                s = cg_blocks[q].view(num_edges, d3 * pair.rows, d1)
                x = x_flat[pair.i_in].view(num_edges, mul_u, d1)
                t = s * x.transpose(1, 2) if d1 == 1 else torch.bmm(s, x.transpose(1, 2))
                parts.append(t.view(num_edges, d3, pair.rows * mul_u))
            terms.append(torch.cat(parts, dim=2) if len(parts) > 1 else parts[0])
        return terms

    def _weighted_sums(self, terms: list[torch.Tensor], hidden: torch.Tensor,
                       layout: EdgeLayout) -> torch.Tensor:
        """Per-degree sums A = sum_e T_e (x) hidden_e, then A @ M per output entry, atom order."""
        plan, h = self.plan, self.radial_hidden
        weight_blocks = torch.split(self.weight_out, self._weight_cols, dim=1)
        flat = []
        for qs, term, (mul_w, d3) in zip(self._by_output, terms, plan.out_slices, strict=True):
            cols = term.shape[1] * term.shape[2]
            node_sums = degree_sums(term.view(-1, cols), hidden, layout)  # [N, d3 K, h]
            weights = torch.cat([self._pair_weights(q, weight_blocks[q]) for q in qs])
            out = node_sums.view(-1, cols // d3 * h) @ weights           # [N d3, w]
            flat.append(out.view(-1, d3, mul_w).transpose(1, 2).reshape(-1, mul_w * d3))
        out = torch.cat(flat, dim=1) if len(flat) > 1 else flat[0]
        return out[layout.node_rank]

    def _pair_weights(self, q: int, block: torch.Tensor) -> torch.Tensor:
        """weight_out block [h, (u, r, w)] of pair q as [(r, u, k), w]."""
        pair, h = self.plan.pairs[q], self.radial_hidden
        mul_u, mul_w = self.plan.in_slices[pair.i_in][0], self.plan.out_slices[pair.i_out][0]
        return block.view(h, mul_u, pair.rows, mul_w).permute(2, 1, 0, 3).reshape(-1, mul_w)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, aggregate={self.mode}"
