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



class _DegreeSums(torch.autograd.Function):
    """A[i] = sum over the edges e -> i of T_e (x) H_e, one batched product per degree bucket.

    Forward and backward write each bucket's product into one preallocated tensor (``out=``
    views), so neither direction concatenates bucket results.
    """

    @staticmethod
    def forward(ctx, terms: torch.Tensor, hidden: torch.Tensor,
                buckets: tuple[tuple[int, int], ...]) -> torch.Tensor:
        cols, width = terms.shape[1], hidden.shape[1]
        num_nodes = sum(count for count, _ in buckets)
        sums = terms.new_empty(num_nodes, cols, width)
        edge = node = 0
        for count, degree in buckets:
            target = sums[node:node + count]
            if degree == 0:
                target.zero_()
            else:
                rows = slice(edge, edge + count * degree)
                torch.bmm(terms[rows].view(count, degree, cols).transpose(1, 2),
                          hidden[rows].view(count, degree, width), out=target)
            edge, node = edge + count * degree, node + count
        ctx.save_for_backward(terms, hidden)
        ctx.buckets = buckets
        return sums

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_sums: torch.Tensor):
        terms, hidden = ctx.saved_tensors
        grad_sums = grad_sums.contiguous()
        cols, width = terms.shape[1], hidden.shape[1]
        grad_terms = torch.empty_like(terms) if ctx.needs_input_grad[0] else None
        grad_hidden = torch.empty_like(hidden) if ctx.needs_input_grad[1] else None
        edge = node = 0
        for count, degree in ctx.buckets:
            rows = slice(edge, edge + count * degree)
            grad = grad_sums[node:node + count]                      # [count, cols, width]
            if degree > 0 and grad_terms is not None:              # H_b @ grad^T
                torch.bmm(hidden[rows].view(count, degree, width), grad.transpose(1, 2),
                          out=grad_terms[rows].view(count, degree, cols))
            if degree > 0 and grad_hidden is not None:             # T_b @ grad
                torch.bmm(terms[rows].view(count, degree, cols), grad,
                          out=grad_hidden[rows].view(count, degree, width))
            edge, node = edge + count * degree, node + count
        return grad_terms, grad_hidden, None


def degree_sums(terms: torch.Tensor, hidden: torch.Tensor, layout: EdgeLayout) -> torch.Tensor:
    """terms [E, C], hidden [E, h] in layout order -> [N, C, h] per atom in layout atom order.

    Row i is sum over the edges into atom i of terms_e (x) hidden_e (zero for atoms without
    edges); differentiable once (no double backward).
    """
    return _DegreeSums.apply(terms.contiguous(), hidden.contiguous(), layout.buckets)
