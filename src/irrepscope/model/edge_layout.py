"""Edges ordered by receiving atom, grouped by in-degree: per-atom sums as batched products.

With edges sorted by (in-degree of the target, target), the edges of all atoms with in-degree d
form one contiguous run of ``count * d`` rows, so an edge tensor [E, C] splits (``torch.split``,
no copy) into per-degree views [count, d, C]: a sum over each atom's incoming edges becomes one
batched matrix product per distinct degree, with no padding. The ordering is computed once per
batch (``EquivariantGNN`` reorders the edges before computing edge features) and shared by
every block.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class EdgeLayout:
    """Edge order and degree buckets of one graph batch (sizes are Python ints).

    ``order`` [E]: edge permutation putting edges in layout order (``edge_index[:, order]``);
    ``buckets``: per distinct in-degree d, ascending, ``(number of atoms, d)``, degree 0 included;
    ``node_rank`` [N]: position of each atom in the layout's atom order (atoms by bucket, then by
    index), so that ``sorted_rows[node_rank]`` gives rows in atom order.
    """

    order: torch.Tensor
    buckets: tuple[tuple[int, int], ...]
    node_rank: torch.Tensor

    @property
    def edge_counts(self) -> list[int]:
        """Edges per bucket (count * degree), the split sizes of an edge tensor in layout order."""
        return [count * degree for count, degree in self.buckets]

    @property
    def num_edges(self) -> int:
        return sum(self.edge_counts)

    @property
    def num_nodes(self) -> int:
        return sum(count for count, _ in self.buckets)


def edge_layout(edge_index: torch.Tensor, num_nodes: int) -> EdgeLayout:
    """Layout of ``edge_index`` [2, E] (source, target) over ``num_nodes`` atoms."""
    target = edge_index[1]
    degree = torch.bincount(target, minlength=num_nodes)
    # atoms sorted by (degree, index); edges by (rank of their target, edge index)
    atom_order = torch.argsort(degree * num_nodes + torch.arange(num_nodes, device=degree.device))
    node_rank = torch.empty_like(atom_order)
    node_rank[atom_order] = torch.arange(num_nodes, device=atom_order.device)
    order = torch.argsort(node_rank[target], stable=True)
    values, counts = torch.unique_consecutive(degree[atom_order], return_counts=True)
    buckets = tuple(zip(counts.tolist(), values.tolist(), strict=True))
    return EdgeLayout(order=order, buckets=buckets, node_rank=node_rank)

