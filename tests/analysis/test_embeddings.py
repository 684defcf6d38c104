"""Per-l splitting into mul*(2l+1) columns, invariant vs raw views under rotation."""

from __future__ import annotations

import numpy as np
import torch
from e3nn import o3
from torch_geometric.loader import DataLoader

from irrepscope.analysis.embeddings import graph_embeddings_by_l, joint_view
from irrepscope.testing import random_rotation, rotate_irreps


def test_split_widths_are_mul_times_2l_plus_1() -> None:
    irreps = o3.Irreps("4x0e+4x1o+4x2e")
    x = np.random.default_rng(0).normal(size=(7, irreps.dim))
    by_l = graph_embeddings_by_l(x, irreps)
    # a split by multiplicity (the reference bug) would give 4, 4, 4 columns
    assert {l: v["raw"].shape for l, v in by_l.items()} == {0: (7, 4), 1: (7, 12), 2: (7, 20)}
    assert {l: v["invariant"].shape for l, v in by_l.items()} == {0: (7, 4), 1: (7, 4), 2: (7, 4)}
    # the raw columns are exactly the irreps' slices, in order
    np.testing.assert_array_equal(by_l[1]["raw"], x[:, 4:16])
    np.testing.assert_array_equal(by_l[2]["raw"], x[:, 16:36])
    # invariants: channel c of l=2 is the norm of columns 16+5c .. 16+5c+4
    np.testing.assert_allclose(by_l[2]["invariant"][:, 3], np.linalg.norm(x[:, 31:36], axis=1))
    np.testing.assert_array_equal(by_l[0]["invariant"], x[:, :4])  # l=0 keeps the signed scalar
    assert joint_view(by_l, "raw").shape == (7, 36)
    np.testing.assert_array_equal(joint_view(by_l, "raw"), x)
    assert joint_view(by_l, "invariant").shape == (7, 12)


def test_unsorted_irreps_with_repeated_orders_are_joined() -> None:
    irreps = o3.Irreps("2x1o+3x0e+1x1o")
    x = np.arange(2 * irreps.dim, dtype=float).reshape(2, -1)
    by_l = graph_embeddings_by_l(x, irreps)
    assert by_l[1]["raw"].shape == (2, 9) and by_l[0]["raw"].shape == (2, 3)
    np.testing.assert_array_equal(by_l[1]["raw"], np.concatenate([x[:, :6], x[:, 9:]], axis=1))


def test_invariants_survive_rotation_raw_does_not(tiny_model, molecules) -> None:
    batch = next(iter(DataLoader(molecules[:6], batch_size=6)))
    rotation = random_rotation(torch.float32, torch.Generator().manual_seed(3))
    rotated = batch.clone()
    rotated.pos = batch.pos @ rotation.T
    with torch.no_grad():
        a, b = tiny_model.embed(batch), tiny_model.embed(rotated)
    irreps = a.irreps[-1]
    ea, eb = a.graph_embeddings[-1].double(), b.graph_embeddings[-1].double()
    # the pooled embedding itself is equivariant: rotating features = features of rotated input
    torch.testing.assert_close(rotate_irreps(irreps, ea, rotation.double()), eb,
                               atol=1e-4, rtol=1e-4)
    va, vb = graph_embeddings_by_l(ea, irreps), graph_embeddings_by_l(eb, irreps)
    for l in (0, 1, 2):
        np.testing.assert_allclose(va[l]["invariant"], vb[l]["invariant"], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(va[0]["raw"], vb[0]["raw"], atol=1e-4, rtol=1e-4)
    for l in (1, 2):
        assert np.abs(va[l]["raw"] - vb[l]["raw"]).max() > 1e-2
