"""RunConfig loading: YAML, overrides, one clear ConfigError per mistake, every shipped config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from irrepscope.errors import ConfigError
from irrepscope.model.info import model_info
from irrepscope.train.config import (
    DataConfig,
    RunConfig,
    TrainConfig,
    apply_overrides,
    config_differences,
    load_config,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TABLE1 = [  # the paper's Table 1: (L, epochs, h)
    ([0, 1, 2], 100, 32), ([0, 1, 2, 4], 100, 32), ([0, 1, 2, 6], 100, 32),
    ([0, 1, 2, 8], 100, 32), ([0, 1, 2, 10], 100, 32), ([0, 1, 2, 3, 4], 30, 16),
    ([0, 1, 2, 3, 4], 100, 16), ([0, 1, 2, 3, 4, 5, 6], 30, 16),
    ([0, 1, 2, 3, 4, 5, 6, 7, 8], 30, 16), ([0, 3, 4, 5, 6], 30, 16), ([0, 3, 4, 5, 6], 100, 16),
]


def test_defaults_are_table2() -> None:
    config = load_config({})
    assert config.seed == 21616
    assert config.data.fractions == [0.8, 0.1, 0.1] and config.data.graph == "bonds"
    assert (config.train.lr, config.train.batch_size) == (1e-3, 32)
    assert (config.model.label_mean, config.model.label_std) == (-76.116, 10.3238)
    assert config.model.degree_norm == 6.0828 and config.model.num_basis == 20


def test_yaml_file_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("seed: 3\nmodel: {orders: [0, 1], hidden: 8}\ntrain: {max_epochs: 7}\n")
    config = load_config(path, ["model.orders=[0, 3, 4]", "data.subset=100", "seed=11",
                                "train.lr=5e-4", "data.data_dir=null", "train.devices=2"])
    assert config.model.orders == [0, 3, 4] and config.model.hidden == 8
    assert (config.seed, config.data.subset, config.train.max_epochs) == (11, 100, 7)
    assert config.train.lr == 5e-4 and config.train.devices == 2
    assert config.split_seed == 11
    # the file itself is not modified and overrides do not leak into the mapping given
    raw = {"train": {"max_epochs": 1}}
    apply_overrides(raw, ["train.max_epochs=2"])
    assert raw == {"train": {"max_epochs": 1}}


def test_round_trip_through_yaml(tmp_path: Path) -> None:
    config = load_config({}, ["model.orders=[0,2,5]", "train.limit_train_batches=3"])
    path = tmp_path / "resolved.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()))
    again = load_config(path)
    assert again == config and config_differences(config, again) == []


@pytest.mark.parametrize(("source", "overrides", "message"), [
    ({"bogus": 1}, [], "unknown key(s) bogus; valid keys: data, model, seed, train"),
    ({"train": {"epochs": 3}}, [], "train: unknown key(s) epochs; valid keys: accelerator"),
    ({"data": {"grpah": "bonds"}}, [], "data: unknown key(s) grpah"),
    ({"model": {"order": [0]}}, [], "model: unknown key(s) order"),
    ({}, ["train.epochs=3"], "unknown key 'train.epochs'; valid keys in train:"),
    ({}, ["optimizer=adam"], "unknown key 'optimizer'; valid keys: seed, data.<key>"),
    ({}, ["train.max_epochs"], "must look like section.key=value"),
    ({}, ["train.max_epochs=three"], "train.max_epochs must be an integer, got 'three'"),
    ({}, ["train.max_epochs=0"], "train.max_epochs must be >= 1"),
    ({}, ["train.lr=-1"], "train.lr must be > 0"),
    ({}, ["train.progress_bar=maybe"], "train.progress_bar must be true or false"),
    ({}, ["train.precision=8"], "train.precision must be one of"),
    ({}, ["train.devices=many"], "train.devices must be a positive integer or 'auto'"),
    ({}, ["train.limit_val_batches=1.5"], "train.limit_val_batches must be a fraction"),
    ({}, ["data.graph=knn"], "data.graph must be one of 'bonds', 'radius'"),
    ({}, ["data.fractions=[0.8, 0.2]"], "data.fractions must be [train, val, test]"),
    ({}, ["data.fractions=[0.8, 0.2, 0.0]"], "three positive numbers summing to 1"),
    ({}, ["data.subset=2"], "data.subset must be >= 3"),
    ({}, ["data.source=xyz"], "data.xyz (the extxyz file) is not set"),
    ({}, ["model.orders=[0, 11]"], "order 11 is outside 0..10"),
    ({}, ["model.hidden=0"], "model.hidden must be >= 1"),
    ({}, ["seed=-4"], "seed must be from 0 to 4294967295"),
    ({}, ["seed=4294967296"], "seed must be from 0 to 4294967295"),
    ({"train": [1, 2]}, [], "train: expected a mapping"),
])
def test_one_clear_error_per_mistake(source: dict, overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(source, overrides)
    assert message in str(info.value)


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(scalar)
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("seed: 5\n# Ångström\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1.yaml is not UTF-8 text \(byte 0xc5 on line 2\)"
                                          r"; save it with UTF-8 encoding"):
        load_config(latin1)


@pytest.mark.parametrize("text", ["", "# nothing set\n", "{}\n"])
def test_empty_config_says_what_it_trains(tmp_path: Path, text: str,
                                          capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    assert load_config(path) == RunConfig.from_dict({})
    err = capsys.readouterr().err
    assert "sets nothing, so every default applies: all of QM9" in err and "100 epochs" in err


def test_tensorboard_needs_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="train.tensorboard is true but neither tensorboard"):
        load_config({}, ["train.tensorboard=true"])


def test_config_differences_names_keys() -> None:
    a = load_config({})
    b = load_config({}, ["model.hidden=8", "train.max_epochs=3"])
    assert config_differences(a, b) == ["model.hidden", "train.max_epochs"]


# configs/field holds nequip-train's configs for the field's models (trained by
# tests/integration/test_cli_field_models.py), not irrepscope's.
IRREPSCOPE_CONFIGS = sorted(p for p in CONFIGS.rglob("*.yaml")
                            if p.relative_to(CONFIGS).parts[0] != "field")


@pytest.mark.parametrize("path", IRREPSCOPE_CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_loads_and_builds(path: Path) -> None:
    config = load_config(path)
    assert isinstance(config, RunConfig)
    assert isinstance(config.data, DataConfig) and isinstance(config.train, TrainConfig)
    assert model_info(config)["parameters"] > 0


def test_table1_configs_are_the_papers_rows() -> None:
    rows = []
    for path in sorted((CONFIGS / "table1").glob("*.yaml")):
        config = load_config(path)
        rows.append((config.model.orders, config.train.max_epochs, config.model.hidden))
        assert path.stem == ("l" + "".join(str(l) for l in config.model.orders if l < 10)
                             + "".join(f"-{l}" for l in config.model.orders if l >= 10)
                             + f"_h{config.model.hidden}_e{config.train.max_epochs}")
        assert config.data.graph == "bonds" and config.seed == 21616
        assert config.data.fractions == [0.8, 0.1, 0.1] and config.data.subset is None
        assert (config.train.lr, config.train.batch_size, config.model.num_layers) == (1e-3, 32, 3)
    assert sorted(rows) == sorted(TABLE1)


def test_demo_configs_share_data_and_training() -> None:
    a = load_config(CONFIGS / "demo" / "l012_h16.yaml")
    b = load_config(CONFIGS / "demo" / "l03456_h16.yaml")
    assert (a.model.orders, b.model.orders) == ([0, 1, 2], [0, 3, 4, 5, 6])
    assert a.model.hidden == b.model.hidden == 16
    assert a.data == b.data and a.train == b.train and a.seed == b.seed
    assert a.data.subset is not None
