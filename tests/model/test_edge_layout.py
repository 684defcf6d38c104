"""Edge layout by in-degree and the per-atom sums computed on it."""

from __future__ import annotations

import torch

from irrepscope.model.edge_layout import degree_sums, edge_layout


def test_layout_orders_edges_by_degree_then_target():
    # targets: atom 2 gets 3 edges, atom 0 gets 1, atom 1 gets 3, atom 3 none
    edge_index = torch.tensor([[1, 3, 0, 3, 2, 0, 3], [2, 2, 1, 1, 0, 2, 1]])
    layout = edge_layout(edge_index, 4)
    assert layout.buckets == ((1, 0), (1, 1), (2, 3))
    assert layout.num_edges == 7 and layout.num_nodes == 4 and layout.edge_counts == [0, 1, 6]
    targets = edge_index[1, layout.order].tolist()
    assert targets == [0, 1, 1, 1, 2, 2, 2]  # degree 1 first, then atoms 1 and 2 (index order)
    assert sorted(layout.order.tolist()) == list(range(7))
    assert layout.node_rank.tolist() == [1, 2, 3, 0]  # atom 3 (no edges) first


def test_degree_sums_equal_index_add_with_gradients():
    g = torch.Generator().manual_seed(0)
    num_nodes = 9
    edge_index = torch.randint(0, num_nodes - 2, (2, 40), generator=g)  # atoms 7, 8: no edges
    layout = edge_layout(edge_index, num_nodes)
    target = edge_index[1, layout.order]
    terms = torch.randn(40, 6, dtype=torch.float64, generator=g, requires_grad=True)
    hidden = torch.randn(40, 3, dtype=torch.float64, generator=g, requires_grad=True)
    sums = degree_sums(terms, hidden, layout)[layout.node_rank]
    expected = torch.zeros(num_nodes, 6, 3, dtype=torch.float64).index_add(
        0, target, terms.unsqueeze(2) * hidden.unsqueeze(1))
    torch.testing.assert_close(sums, expected, atol=1e-12, rtol=0)
    assert not sums[7:].any()
    assert torch.autograd.gradcheck(
        lambda t, h: degree_sums(t, h, layout), (terms, hidden), fast_mode=True)
