"""Utilization numbers on synthetic data with known structure, and on a tiny model."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch_geometric.loader import DataLoader

from irrepscope.analysis import utilization as u
from irrepscope.model.irreps import columns_by_l


@pytest.fixture()
def nsps_values() -> np.ndarray:
    return np.random.default_rng(1).uniform(0, 30, size=300)


def test_variance_share() -> None:
    rng = np.random.default_rng(0)
    per_l = {0: rng.normal(scale=2.0, size=(500, 4)), 1: rng.normal(scale=1.0, size=(500, 12)),
             2: np.zeros((500, 20))}
    share = u.variance_share(per_l)
    assert share[2] == 0.0
    assert share[0] == pytest.approx(16 / 28, rel=0.1) and share[1] == pytest.approx(12 / 28,
                                                                                      rel=0.1)
    assert sum(share.values()) == pytest.approx(1.0)


def test_probe_recovers_an_encoded_target(nsps_values) -> None:
    rng = np.random.default_rng(2)
    encoded = np.column_stack([nsps_values * 0.3 + 1.0, rng.normal(size=(300, 3))])
    assert u.ridge_probe_r2(encoded, nsps_values) > 0.99
    assert u.ridge_probe_r2(rng.normal(size=(300, 4)), nsps_values) < 0.1
    assert u.ridge_probe_r2(np.zeros((300, 4)), nsps_values) <= 0.01


def test_probe_skips_nan_targets(nsps_values) -> None:
    y = nsps_values.copy()
    y[:10] = np.nan
    x = np.column_stack([nsps_values, nsps_values ** 2])
    x[:10] = 1e6  # would ruin the fit if the NaN rows were used
    assert u.ridge_probe_r2(x, y) > 0.99
    assert np.isnan(u.ridge_probe_r2(x[:3], y[:3]))


def test_probe_is_nan_below_the_size_where_r2_means_something(nsps_values) -> None:
    x = np.column_stack([nsps_values, nsps_values ** 2])
    few = u.MIN_PROBE_ROWS
    assert np.isnan(u.ridge_probe_r2(x[:few - 1], nsps_values[:few - 1]))
    assert u.ridge_probe_r2(x[:few], nsps_values[:few]) > 0.9


def test_mean_abs_pair_difference_is_exact() -> None:
    v = np.random.default_rng(3).normal(size=40)
    brute = np.mean([abs(a - b) for a, b in itertools.permutations(v, 2)])
    assert u.mean_abs_pair_difference(v) == pytest.approx(brute, rel=1e-12)


def test_consistency_zero_for_encoding_one_for_random(nsps_values) -> None:
    rng = np.random.default_rng(4)
    encoding = np.column_stack([nsps_values, rng.normal(scale=1e-3, size=300)])
    assert u.neighbourhood_consistency(encoding, nsps_values) < 0.05
    random = rng.normal(size=(300, 2))
    assert u.neighbourhood_consistency(random, nsps_values) == pytest.approx(1.0, abs=0.15)
    assert np.isnan(u.neighbourhood_consistency(None, nsps_values))
    values = nsps_values.copy()
    values[::3] = np.nan  # NaN NSPS are left out, not propagated
    assert u.neighbourhood_consistency(encoding, values) < 0.05


def test_ablation_of_a_tiny_model(tiny_model, molecules) -> None:
    loader = DataLoader(molecules, batch_size=8)
    base, rel = u.ablation(tiny_model, loader, [0, 1, 2], progress=False)
    with torch.no_grad():
        pred = torch.cat([tiny_model(b) for b in loader]).double()
    true = torch.cat([b.y for b in loader]).double()
    assert base == pytest.approx(float(((pred - true) ** 2).mean()), rel=1e-6)
    assert set(rel) == {0, 1, 2}
    assert rel[0] != 0.0  # zeroing l=0 everywhere removes the readout's input
    assert all(np.isfinite(v) for v in rel.values())
    again, rel_again = u.ablation(tiny_model, loader, [1], progress=False, baseline=base)
    assert again == base and rel_again[1] == pytest.approx(rel[1], rel=1e-9)


def test_input_gradients_match_autograd(tiny_model, molecules) -> None:
    loader = DataLoader(molecules, batch_size=5)
    grads = u.input_gradients(tiny_model, loader, block=-2, progress=False)
    # independent reference: gradient of the summed energy w.r.t. block 1's output, per l
    cols = columns_by_l(tiny_model.block_irreps[1])
    totals = {l: 0.0 for l in cols}
    for batch in loader:
        kept = {}

        def hook(i, x, irreps, kept=kept):
            if i == 1:
                x.retain_grad()
                kept["x"] = x
            return None

        with torch.enable_grad():
            tiny_model.zero_grad()
            tiny_model(batch, feature_hook=hook).sum().backward()
        for l, c in cols.items():
            totals[l] += float((kept["x"].grad[:, c] * kept["x"][:, c]).abs().sum())
    for l in cols:
        assert grads[l]["grad_x_input"] == pytest.approx(totals[l] / len(molecules), rel=1e-5)
        assert grads[l]["grad_abs"] > 0
    last = u.input_gradients(tiny_model, loader, block=-1, progress=False)
    assert last[0]["grad_abs"] > 0
    assert last[1]["grad_abs"] == 0.0 and last[2]["grad_abs"] == 0.0  # readout reads only l=0


def test_usage_rows_match_the_analysis_numbers(tiny_model, molecule_factory) -> None:
    """The numbers training records (model.usage.usage_rows) are the analysis' own, and taking
    them changes neither the model's mode nor torch's random state."""
    from torch_geometric.data import Batch

    from irrepscope.analysis.embeddings import graph_embeddings_by_l
    from irrepscope.model.usage import usage_rows

    molecules = molecule_factory(40, seed=2)
    batches = [Batch.from_data_list(molecules[k:k + 16]) for k in range(0, 40, 16)]
    tiny_model.train()
    state = torch.get_rng_state()
    rows = usage_rows(tiny_model, batches, seed=4)
    assert tiny_model.training and torch.equal(state, torch.get_rng_state())
    tiny_model.eval()
    with torch.no_grad():
        outputs = [tiny_model.embed(b) for b in batches]
    energy = torch.cat([b.y for b in batches]).double().numpy()
    _, ablated = u.ablation(tiny_model, DataLoader(molecules, batch_size=16), [0, 1, 2],
                            progress=False)
    last = len(tiny_model.block_irreps) - 1
    for block, irreps in enumerate(tiny_model.block_irreps):
        joint = torch.cat([o.graph_embeddings[block] for o in outputs]).double()
        by_l = graph_embeddings_by_l(joint, irreps)
        share = u.variance_share({l: v["raw"] for l, v in by_l.items()})
        mine = {r["l"]: r for r in rows if r["block"] == block}
        assert sorted(mine) == [0, 1, 2]
        for l, row in mine.items():
            assert row["variance_share"] == pytest.approx(share[l], rel=1e-9)
            assert row["probe_r2_energy"] == pytest.approx(
                u.ridge_probe_r2(by_l[l]["invariant"], energy, seed=4), rel=1e-9)
            if block == last:
                assert row["ablation_rel_mse"] == pytest.approx(ablated[l], rel=1e-9)
            else:
                assert np.isnan(row["ablation_rel_mse"])
    # the ablation on the first batch only: the analysis' ablation of those 16 molecules
    first = {r["l"]: r["ablation_rel_mse"] for r in usage_rows(tiny_model, batches, seed=4,
                                                                 ablation_batches=1)
             if r["block"] == last}
    _, on_first = u.ablation(tiny_model, [batches[0]], [0, 1, 2], progress=False)
    assert first == pytest.approx(on_first, rel=1e-9)
