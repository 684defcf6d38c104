"""model_info: irreps, paths and parameter counts by arithmetic, checked against built models."""

from __future__ import annotations

import json

import pytest
import torch

from irrepscope.errors import ConfigError
from irrepscope.model import ModelConfig, build_model
from irrepscope.model.info import format_model_info, model_info
from irrepscope.testing import REFERENCE_MODELS


@pytest.mark.parametrize(("orders", "hidden", "expected"), REFERENCE_MODELS, ids=str)
def test_parameter_arithmetic_matches_reference(orders, hidden, expected):
    assert model_info(ModelConfig(orders=orders, hidden=hidden))["parameters"] == expected


def test_breakdown_of_the_canonical_model():
    info = model_info(ModelConfig())
    assert info["embedding_parameters"] == 6400
    assert info["num_blocks"] == 5 and info["hidden_irreps"] == "32x0e+32x1o+32x2e"
    first, second = info["blocks"][0], info["blocks"][1]
    assert (first["weights_per_edge"], first["parameters"]) == (6144, 20 * 32 + 32 * 6144)
    assert first["paths"] == ["64x0e x 1x0e -> 32x0e", "64x0e x 1x1o -> 32x1o",
                              "64x0e x 1x2e -> 32x2e"]
    assert (second["num_paths"], second["weights_per_edge"]) == (11, 11264)
    assert not first["residual"] and all(b["residual"] for b in info["blocks"][1:])
    assert (info["readout_parameters"], info["head_parameters"]) == (32, 2)
    json.dumps(info)


@pytest.mark.parametrize("changes", [
    {"orders": [0, 2, 3], "hidden": 3},
    {"orders": [0, 1], "hidden": 2, "gate": True, "output_dim": 3, "num_layers": 1},
    {"orders": [0, 5], "hidden": 2, "embedding_dim": 8, "num_elements": 10, "num_basis": 4},
    {"orders": [0, 1, 2, 3], "hidden_orders": [0, 1, 3], "hidden": 2, "gate": True},
], ids=str)
def test_arithmetic_equals_built_model(changes):
    config = ModelConfig(**changes)
    model = build_model(config)
    info = model_info(config)
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    assert [b["irreps_out"] for b in info["blocks"]] == [str(i) for i in model.block_irreps]
    assert [b["weights_per_edge"] for b in info["blocks"]] == [
        b.message.weight_numel for b in model.blocks]


def test_accepts_run_configs_and_formats_text():
    class Run:
        model = ModelConfig(orders=[0, 1, 2, 10], hidden=32)

    info = model_info(Run())
    text = format_model_info(info)
    assert "parameters: 2,631,074" in text
    assert "1x10e" in text and "block 4 (hidden_4, residual)" in text
    with pytest.raises(ConfigError):
        model_info(ModelConfig(orders=[0, 0]))
    assert torch.get_default_dtype() == torch.float32


def test_cli_model_info_json(tmp_path, capsys):
    from irrepscope.cli import main

    path = tmp_path / "run.yaml"
    path.write_text("model:\n  orders: [0, 1, 2, 3, 4]\n  hidden: 16\n")
    assert main(["model", "info", "--config", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["parameters"] == 778_066 and info["hidden_irreps"].startswith("16x0e+16x1o")
    assert main(["model", "info", "--config", str(path), "--set", "model.hidden=0"]) == 2
    assert "model.hidden must be >= 1" in capsys.readouterr().err


def test_a_model_too_large_for_memory_is_refused_before_building(tmp_path, capsys, monkeypatch):
    from irrepscope.cli import main
    from irrepscope.model import info as info_module

    huge = ModelConfig(hidden=1_000_000_000)
    count = model_info(huge)["parameters"]
    with pytest.raises(ConfigError, match=f"has {count:,} parameters: .* of float32 weights, "
                                          f"about .* to train with AdamW; this machine has"):
        build_model(huge)
    assert info_module.memory_text(1_648_034) == \
        "6.3 MiB of float32 weights, about 25.1 MiB to train with AdamW"
    monkeypatch.setattr(info_module, "physical_memory_bytes", lambda: 1_648_034 * 4 - 1)
    with pytest.raises(ConfigError, match="1,648,034 parameters"):
        build_model(ModelConfig())
    monkeypatch.undo()
    path = tmp_path / "huge.yaml"
    path.write_text("model:\n  hidden: 1000000000\ndata:\n  subset: 10\n")
    assert main(["train", "--config", str(path), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Lower model.hidden" in err
    assert not (tmp_path / "run").exists()


def test_message_step_choice_is_shown_per_block(capsys):
    auto = model_info(ModelConfig())["blocks"]
    assert [b["aggregate_from_edges_per_atom"] is not None for b in auto] == [True] * 5
    assert 2.5 < auto[1]["aggregate_from_edges_per_atom"] < 17  # bonds per-edge, 6 Å aggregated
    assert auto[1]["message_step"].startswith("cost model: per-edge weights below")
    high = model_info(ModelConfig(orders=[0, 3, 4, 5, 6], hidden=16))["blocks"]
    assert high[0]["message_step"] == "per-edge weights (cost model: aggregation never cheaper)"
    for aggregate, text in (("always", "aggregate-then-weight"), ("never", "per-edge weights")):
        info = model_info(ModelConfig(aggregate=aggregate))
        assert {b["message_step"] for b in info["blocks"]} == {text}
        assert f"aggregate={aggregate}" in format_model_info(info)
    e3nn = model_info(ModelConfig(tensor_product="e3nn"))["blocks"]
    assert {b["message_step"] for b in e3nn} == {"per-edge weights"}
    assert "message step: cost model" in format_model_info(model_info(ModelConfig()))


def test_hidden_orders_apart_from_the_sh_orders_are_shown():
    info = model_info(ModelConfig(orders=[0, 1, 2], hidden_orders=[0, 2], hidden=4))
    assert (info["hidden_irreps"], info["sh_irreps"]) == ("4x0e+4x2e", "1x0e+1x1o+1x2e")
    assert "L=[0, 1, 2] (hidden orders [0, 2])" in format_model_info(info)
    assert "(hidden orders" not in format_model_info(model_info(ModelConfig()))
