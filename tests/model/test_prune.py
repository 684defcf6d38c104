"""Pruning: the pruned model equals the ablated original, sizes equal a model built directly."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data

import irrepscope.model.gnn as gnn
from irrepscope.errors import ConfigError
from irrepscope.model import ModelConfig, build_model
from irrepscope.model.irreps import columns_by_l, sh_irreps, zero_orders
from irrepscope.model.prune import prune_model, pruned_config, unused_sh_orders

SMALL = dict(hidden=3, num_layers=1, num_elements=10, embedding_dim=8, num_basis=4)
# message steps whose weight layouts differ (e3nn's; fused per edge; aggregate-then-weight),
# and the gate, whose message irreps hold one gate scalar per l > 0 channel
BUILDS = [{"tensor_product": "e3nn", "aggregate": "never"},
          {"tensor_product": "fused", "aggregate": "never"},
          {"tensor_product": "fused", "aggregate": "always"},
          {"tensor_product": "fused", "aggregate": "auto", "gate": True}]


def _batch(count: int = 5, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    graphs = []
    for _ in range(count):
        n = int(torch.randint(3, 7, (1,), generator=g))
        z = torch.tensor([1, 6, 7, 8])[torch.randint(0, 4, (n,), generator=g)]
        src, dst = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        keep = src != dst
        graphs.append(Data(z=z, pos=torch.randn(n, 3, generator=g, dtype=torch.float64) * 1.3,
                           edge_index=torch.stack([src[keep], dst[keep]]),
                           y=torch.zeros(1, dtype=torch.float64)))
    return Batch.from_data_list(graphs)


def _model(orders: list[int], seed: int = 0, **build) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(ModelConfig(orders=orders, **SMALL, **build), dtype=torch.float64).eval()


@pytest.mark.parametrize("build", BUILDS, ids=lambda b: "-".join(map(str, b.values())))
@pytest.mark.parametrize("drop", [[1], [2, 3], [1, 2, 3]], ids=str)
def test_hidden_pruning_equals_ablation_to_float64_precision(build, drop):
    model, batch = _model([0, 1, 2, 3], **build), _batch()
    pruned = prune_model(model, drop)
    with torch.no_grad():
        ablated = model(batch, feature_hook=lambda i, x, irreps: zero_orders(x, irreps, drop))
        original, energy = model(batch), pruned(batch)
    assert pruned.config.feature_orders == [l for l in [0, 1, 2, 3] if l not in drop]
    assert pruned.config.orders == [0, 1, 2, 3]  # the spherical harmonics are kept
    torch.testing.assert_close(energy, ablated, rtol=0, atol=1e-12)
    assert (energy - original).abs().max() > 1e-3  # the ablation changes something


@pytest.mark.parametrize("build", BUILDS[1:3], ids=lambda b: b["aggregate"])
def test_sh_pruning_equals_the_original_without_those_paths(build, monkeypatch):
    """Dropping l from the SH too = zeroing l in the features and in the edges' harmonics."""
    model, batch, drop = _model([0, 1, 2, 3], **build), _batch(), [2]
    pruned = prune_model(model, drop, drop_sh=True)
    assert (pruned.config.orders, pruned.config.hidden_orders) == ([0, 1, 3], None)
    edge_features = gnn.edge_features

    def without_l(pos, edge_index, orders, *args):
        sh, radial = edge_features(pos, edge_index, orders, *args)
        return sh * zero_orders(torch.ones(sh.shape[1], dtype=sh.dtype), sh_irreps(orders),
                                drop), radial

    with torch.no_grad():
        energy, hidden_only = pruned(batch), prune_model(model, drop)(batch)
        monkeypatch.setattr(gnn, "edge_features", without_l)
        expected = model(batch, feature_hook=lambda i, x, irreps: zero_orders(x, irreps, drop))
    torch.testing.assert_close(energy, expected, rtol=0, atol=1e-12)
    assert (energy - hidden_only).abs().max() > 1e-4  # the SH paths mattered


@pytest.mark.parametrize("build", BUILDS, ids=lambda b: "-".join(map(str, b.values())))
def test_parameter_counts_equal_a_model_built_with_the_smaller_set(build):
    model = _model([0, 1, 2, 3], **build)

    def count(m: torch.nn.Module) -> int:
        return sum(p.numel() for p in m.parameters())

    hidden_only = prune_model(model, [2])
    direct = _model([0, 1, 2, 3], hidden_orders=[0, 1, 3], **build)
    assert count(hidden_only) == count(direct) < count(model)
    both = prune_model(model, [2], drop_sh=True)
    assert count(both) == count(_model([0, 1, 3], **build)) < count(hidden_only)
    assert both.config == _model([0, 1, 3], **build).config


def test_default_hidden_orders_leave_every_config_unchanged():
    for orders in ([0, 1, 2], [0, 1, 2, 3, 4], [0, 3, 4]):
        plain, explicit = _model(orders), _model(orders, hidden_orders=orders)
        assert plain.config.feature_orders == orders
        assert [p.shape for p in plain.parameters()] == [p.shape for p in explicit.parameters()]


def test_pruning_keeps_dtype_mode_and_float32_models():
    torch.manual_seed(0)
    model = build_model(ModelConfig(orders=[0, 1, 2], **SMALL))  # float32, training mode
    pruned = prune_model(model, [2])
    assert pruned.training and pruned.embedding.weight.dtype == torch.float32
    assert set(columns_by_l(pruned.irreps_hidden)) == {0, 1}
    torch.testing.assert_close(pruned.embedding.weight, model.embedding.weight)


@pytest.mark.parametrize(("drop", "drop_sh", "message"), [
    ([0], False, "order 0 cannot be dropped: the readout"),
    ([0, 1], True, "order 0 cannot be dropped"),
    ([3], False, r"order\(s\) \[3\] are not in the run's hidden orders \[0, 1, 2\]"),
    ([], False, "no order to drop"),
])
def test_bad_orders_raise_one_clear_message(drop, drop_sh, message):
    with pytest.raises(ConfigError, match=message):
        pruned_config(ModelConfig(orders=[0, 1, 2]), drop, drop_sh)


def test_an_order_kept_in_the_sh_only_can_be_dropped_from_it_later():
    config = ModelConfig(orders=[0, 1, 2], hidden_orders=[0, 2]).validate()
    with pytest.raises(ConfigError, match="hidden orders"):
        pruned_config(config, [1])
    assert pruned_config(config, [1], drop_sh=True).orders == [0, 2]


@pytest.mark.parametrize(("values", "message"), [
    ({"orders": [0, 1], "hidden_orders": [0, 2]}, r"order\(s\) \[2\] that are not in model.orders"),
    ({"hidden_orders": [1, 2]}, "model.hidden_orders must include 0"),
    ({"hidden_orders": []}, "model.hidden_orders is empty"),
])
def test_hidden_orders_validation(values, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**values).validate()


def test_unused_sh_orders_are_those_no_path_couples_to():
    model = _model([0, 1, 2, 3, 4])
    assert unused_sh_orders(model) == []
    assert unused_sh_orders(prune_model(model, [1, 3])) == [1, 3]  # even features, odd SH
    assert unused_sh_orders(prune_model(model, [1, 2, 3, 4])) == [1, 2, 3, 4]
