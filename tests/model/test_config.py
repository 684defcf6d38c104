"""ModelConfig validation: one clear ConfigError per bad field."""

from __future__ import annotations

import pytest

from irrepscope.errors import ConfigError
from irrepscope.model.config import ModelConfig


def test_defaults_are_the_papers_table2():
    c = ModelConfig().validate()
    assert (c.orders, c.hidden, c.num_layers, c.embedding_dim, c.num_elements) == ([0, 1, 2], 32,
                                                                                  3, 64, 100)
    assert (c.num_basis, c.cutoff, c.degree_norm, c.output_dim) == (20, 6.0, 6.0828, 1)
    assert (c.label_mean, c.label_std) == (-76.116, 10.3238)
    assert (c.sh_backend, c.tensor_product, c.gate, c.irrep_dropout) == (
        "auto", "fused", False, 0.0)
    assert c.aggregate == "auto"  # the cost model picks the message step per block


def test_orders_are_sorted_and_tuples_accepted():
    assert ModelConfig(orders=(6, 0, 3)).validate().orders == [0, 3, 6]
    assert ModelConfig(orders=[0, 10]).validate().orders == [0, 10]


@pytest.mark.parametrize(("changes", "message"), [
    ({"orders": [0, 1, 1]}, "distinct"),
    ({"orders": [0, 11]}, "outside 0..10"),
    ({"orders": [0, -1]}, "outside 0..10"),
    ({"orders": []}, "empty"),
    ({"orders": [1, 2]}, "must include 0"),
    ({"orders": "012"}, "list of integers"),
    ({"orders": [0, 1.5]}, "integers"),
    ({"orders": [0, True]}, "integers"),
    ({"hidden": 0}, "hidden must be >= 1"),
    ({"hidden": -4}, "hidden must be >= 1"),
    ({"hidden": 3.0}, "hidden must be an integer"),
    ({"num_layers": -1}, "num_layers must be >= 0"),
    ({"embedding_dim": 0}, "embedding_dim"),
    ({"num_basis": 0}, "num_basis"),
    ({"cutoff": 0.0}, "cutoff must be > 0"),
    ({"cutoff": float("inf")}, "cutoff must be finite"),
    ({"degree_norm": -1}, "degree_norm must be > 0"),
    ({"label_std": 0}, "label_std must be > 0"),
    ({"label_mean": float("nan")}, "label_mean must be finite"),
    ({"irrep_dropout": 1.0}, r"irrep_dropout must be in \[0, 1\)"),
    ({"sh_backend": "cuda"}, "sh_backend must be one of auto, torch, triton, e3nn"),
    ({"tensor_product": "fast"}, "tensor_product must be one of e3nn, fused"),
    ({"gate": "yes"}, "gate must be true or false"),
    ({"aggregate": "yes"}, "aggregate must be one of auto, always, never"),
    ({"aggregate": "always", "tensor_product": "e3nn"},
     "aggregate 'always' needs model.tensor_product 'fused'"),
])
def test_invalid_values_raise_one_clear_message(changes, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**changes).validate()


def test_from_dict_rejects_unknown_keys_and_round_trips():
    with pytest.raises(ConfigError, match="unknown key.*hiden"):
        ModelConfig.from_dict({"hiden": 3})
    with pytest.raises(ConfigError, match="mapping"):
        ModelConfig.from_dict([1, 2])
    c = ModelConfig.from_dict({"orders": [0, 4, 2], "hidden": 8, "gate": True})
    assert ModelConfig.from_dict(c.to_dict()) == c
    assert c.to_dict()["orders"] == [0, 2, 4]


def test_zero_layers_is_the_two_block_model():
    """num_layers counts the residual blocks after the first one: 0 is allowed, two blocks."""
    from irrepscope.model.gnn import build_model
    from irrepscope.model.info import model_info
    from irrepscope.train.config import load_config

    config = ModelConfig(hidden=2, num_layers=0, embedding_dim=4, num_basis=2).validate()
    assert len(build_model(config).blocks) == 2
    info = model_info(load_config({"model": config.to_dict()}))
    assert info["num_layers"] == 0 and len(info["blocks"]) == 2
