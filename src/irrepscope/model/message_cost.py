"""Cost model of the two exact message steps: per-edge weights vs aggregate-then-weight.

Counted from irreps sizes alone (no module is built): forward multiply-adds and floats kept for
the backward, for E edges into N atoms. Per pair of input entry (mul u, dim d1) and output entry
(mul w, dim d3) with r SH rows and radial width h:

- per-edge weights (``FusedEdgeMessage``): per edge h u r w (weights; folded into one wide
  product for scalar inputs) + u d1 r w (x with the weights) + d3 d1 r w (with the CG matrix);
  keeps the [E, u r w] weights (scalar inputs: [E, h u] once per input entry) and y [E, d1 r w];
- aggregate-then-weight (``AggregatedEdgeMessage``): per edge d3 r d1 u (unweighted CG product
  T) + h d3 r u (sum of hidden (x) T into the receiving atom), per atom d3 r u h w (the last
  radial layer); keeps T [E, d3 r u] and the per-atom sums [N, d3 r u h].

The choice is deterministic: aggregate when its multiply-adds times ``AGGREGATE_PENALTY`` are
at most the per-edge ones and it keeps no more floats. The penalty covers what multiply-adds
miss (per-degree batched products are smaller than the per-edge step's, and the per-atom sums
are rewritten by their backward); ``irrepscope bench train`` measures it (docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from e3nn import o3

from irrepscope.model.message import tensor_product_paths

AGGREGATE_PENALTY = 1.5


@dataclass(frozen=True)
class PairSize:
    """Sizes of one (input entry, output entry) pair: multiplicities, dimensions, SH rows."""

    i_in: int
    mul_in: int
    dim_in: int
    mul_out: int
    dim_out: int
    rows: int


@dataclass(frozen=True)
class MessageCost:
    """Forward multiply-adds and kept floats: ``per_edge`` and ``per_atom`` coefficients."""

    macs_per_edge: int
    macs_per_atom: int
    floats_per_edge: int
    floats_per_atom: int

    def macs(self, num_edges: int, num_atoms: int) -> int:
        return self.macs_per_edge * num_edges + self.macs_per_atom * num_atoms

    def floats(self, num_edges: int, num_atoms: int) -> int:
        return self.floats_per_edge * num_edges + self.floats_per_atom * num_atoms


def pair_sizes(irreps_in: o3.Irreps | str, irreps_sh: o3.Irreps | str,
               irreps_out: o3.Irreps | str) -> list[PairSize]:
    """One ``PairSize`` per (input entry, output entry) with at least one path, sorted."""
    irreps_in, irreps_sh = o3.Irreps(irreps_in), o3.Irreps(irreps_sh)
    irreps_out = o3.Irreps(irreps_out)
    rows: dict[tuple[int, int], int] = {}
    for p in tensor_product_paths(irreps_in, irreps_sh, irreps_out):
        key = (p.i_in, p.i_out)
        rows[key] = rows.get(key, 0) + irreps_sh[p.i_sh].mul
    return [PairSize(i, irreps_in[i].mul, irreps_in[i].ir.dim, irreps_out[o].mul,
                     irreps_out[o].ir.dim, r) for (i, o), r in sorted(rows.items())]


def per_edge_cost(pairs: list[PairSize], radial_hidden: int) -> MessageCost:
    """Cost of per-edge weights (the fused step)."""
    h, macs, floats, folded_inputs = radial_hidden, 0, 0, set()
    for p in pairs:
        macs += h * p.mul_in * p.rows * p.mul_out + p.dim_out * p.dim_in * p.rows * p.mul_out
        floats += p.dim_in * p.rows * p.mul_out
        if p.dim_in == 1:
            if p.i_in not in folded_inputs:  # z = hidden (x) x, [E, h u] once per input entry
                floats += h * p.mul_in
            folded_inputs.add(p.i_in)
        else:
            macs += p.mul_in * p.dim_in * p.rows * p.mul_out
            floats += p.mul_in * p.rows * p.mul_out
    return MessageCost(macs, 0, floats, 0)


def aggregated_cost(pairs: list[PairSize], radial_hidden: int) -> MessageCost:
    """Cost of aggregate-then-weight."""
    h = radial_hidden
    t_cols = sum(p.dim_out * p.rows * p.mul_in for p in pairs)
    return MessageCost(
        macs_per_edge=sum(p.dim_out * p.rows * p.dim_in * p.mul_in for p in pairs) + h * t_cols,
        macs_per_atom=sum(p.dim_out * p.rows * p.mul_in * h * p.mul_out for p in pairs),
        floats_per_edge=t_cols, floats_per_atom=h * t_cols)


def prefers_aggregation(pairs: list[PairSize], radial_hidden: int, num_edges: int,
                        num_atoms: int) -> bool:
    """Whether aggregate-then-weight is chosen for E edges into N atoms (the cost model)."""
    if num_edges == 0:
        return False
    fused, aggregated = per_edge_cost(pairs, radial_hidden), aggregated_cost(pairs, radial_hidden)
    return (aggregated.macs(num_edges, num_atoms) * AGGREGATE_PENALTY
            <= fused.macs(num_edges, num_atoms)
            and aggregated.floats(num_edges, num_atoms) <= fused.floats(num_edges, num_atoms))


def break_even_degree(pairs: list[PairSize], radial_hidden: int) -> float | None:
    """Smallest edges per atom from which aggregation is chosen (None: never)."""
    fused, aggregated = per_edge_cost(pairs, radial_hidden), aggregated_cost(pairs, radial_hidden)
    # per atom at degree k: aggregated: k a_e + a_n (x penalty) <= k f_e; floats likewise
    bounds = []
    for f_e, a_e, a_n, scale in ((fused.macs_per_edge, aggregated.macs_per_edge,
                                  aggregated.macs_per_atom, AGGREGATE_PENALTY),
                                 (fused.floats_per_edge, aggregated.floats_per_edge,
                                  aggregated.floats_per_atom, 1.0)):
        margin = f_e - scale * a_e
        if margin <= 0:
            return None
        bounds.append(scale * a_n / margin)
    return max(bounds)


def model_multiply_adds(model: Any, num_edges: int, num_atoms: int) -> int:
    """Forward multiply-adds of every block's message step of ``model`` (an ``EquivariantGNN``)
    for a batch of E edges into N atoms, each counted for the formulation it runs."""
    total = 0
    for block in model.blocks:
        step = block.message
        pairs = pair_sizes(step.irreps_in, step.irreps_sh, step.irreps_out)
        cost = (aggregated_cost if step.aggregates(num_edges, num_atoms) else per_edge_cost)(
            pairs, step.radial_hidden)
        total += cost.macs(num_edges, num_atoms)
    return total
