"""Which seeds a --seeds value means, each seed's overrides and run dir, and bad input."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from irrepscope.cli import main
from irrepscope.errors import ConfigError
from irrepscope.train.config import load_config
from irrepscope.train.seeds import (
    parse_seeds,
    resolve_seeds,
    seed_overrides,
    seed_run_dirs,
    strip_seed_suffix,
)


def test_count_and_list() -> None:
    assert parse_seeds("3") == 3 and parse_seeds("3,7, 11") == [3, 7, 11]
    assert parse_seeds("7,") == [7]  # a comma makes a list, even of one seed
    assert resolve_seeds("3", base=10) == [10, 11, 12]
    assert resolve_seeds(2, base=0) == [0, 1]
    assert resolve_seeds([3, 7, 11], base=10) == [3, 7, 11]
    assert resolve_seeds(None, base=10) == [10]


@pytest.mark.parametrize(("seeds", "message"), [
    ("0", "--seeds 0: at least one seed is needed"),
    (0, "--seeds 0: at least one seed is needed"),
    ("-2", "--seeds -2: at least one seed is needed"),
    ("three", "--seeds three: not integers"),
    ("1.5", "--seeds 1.5: not integers"),
    ("", "--seeds is empty"),
    (",", "--seeds is an empty list"),
    ("3,-1", r"seeds must be integers from 0 to 4294967295"),
    ("3,7,3", r"\[3\] given more than once"),
    ("99999999999999999999", "--seeds 99999999999999999999: more than 1000 runs per config"),
    (",".join(map(str, range(1001))), "--seeds lists 1001 seeds: more than 1000 runs"),
    ("4294967296,1", "seeds must be integers from 0 to 4294967295"),
])
def test_bad_seeds_are_one_clear_error(seeds, message) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        resolve_seeds(seeds, base=10)
    assert "count N from 1 to 1000" in str(err.value) and len(str(err.value)) < 400


def test_a_huge_seed_count_is_refused_at_once_through_the_cli(tiny_settings, tmp_path, capsys):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_settings))
    start = time.perf_counter()
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "--seeds",
                 "99999999999999999999"]) == 2
    assert time.perf_counter() - start < 5 and not (tmp_path / "out").exists()
    assert "more than 1000 runs per config" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="goes past 4294967295"):
        resolve_seeds(3, base=4294967294)


def test_split_is_pinned_to_the_configs_split_unless_varied(tiny_config) -> None:
    config = tiny_config()  # seed 5, data.split_seed null
    assert seed_overrides(config, 5) == []  # its own seed: the config as it is
    assert seed_overrides(config, 6) == ["seed=6", "data.split_seed=5"]
    assert seed_overrides(config, 6, vary_split=True) == ["seed=6"]
    pinned = tiny_config("data.split_seed=9")
    assert seed_overrides(pinned, 6) == ["seed=6", "data.split_seed=9"]
    with pytest.raises(ConfigError, match="sets data.split_seed=9; remove that setting"):
        seed_overrides(pinned, 6, vary_split=True)
    seeded = load_config(config.to_dict(), seed_overrides(config, 6))
    assert seeded.seed == 6 and seeded.split_seed == config.split_seed == 5


def test_run_dirs_one_per_seed(tiny_config, tmp_path: Path) -> None:
    config = tiny_config()
    assert seed_run_dirs(tmp_path, "cfg", config, None) == [(tmp_path / "cfg", [])]
    assert seed_run_dirs(tmp_path, "cfg", config, 1) == [(tmp_path / "cfg", [])]
    runs = seed_run_dirs(tmp_path, "cfg", config, 2)
    assert [d.name for d, _ in runs] == ["cfg_s5", "cfg_s6"]
    assert [d.name for d, _ in seed_run_dirs(tmp_path, "cfg", config, "9,")] == ["cfg_s9"]
    with pytest.raises(ConfigError, match="give --seeds too"):
        seed_run_dirs(tmp_path, "cfg", config, None, vary_split=True)
    assert strip_seed_suffix("l012_h16_s21617") == ("l012_h16", 21617)
    assert strip_seed_suffix("l012_h16") == ("l012_h16", None)


@pytest.mark.parametrize("command", ["sweep", "demo"])
def test_cli_seeds_zero(command, tiny_settings, tmp_path: Path, capsys) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_settings))
    args = [command, *([str(config)] if command == "sweep" else []), "--seeds", "0",
            "--out", str(tmp_path / "out")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("irrepscope: error: --seeds 0: at least one seed")
    assert not (tmp_path / "out").exists()
