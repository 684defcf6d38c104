"""``train.targets``: per-target loss weights, validated with one clear message each."""

from __future__ import annotations

import pytest

from irrepscope.errors import ConfigError
from irrepscope.train.config import load_config


def test_default_is_energy_only_and_weights_are_kept_in_a_fixed_order():
    assert load_config({}).train.targets == {"energy": 1.0}
    config = load_config({}, ["train.targets={quadrupole: 1, dipole: 0.5, energy: 0}"])
    assert list(config.train.targets.items()) == [("energy", 0.0), ("dipole", 0.5),
                                                  ("quadrupole", 1.0)]


@pytest.mark.parametrize(("value", "message"), [
    ("{dipole: -1}", "train.targets.dipole is -1.0: loss weights must be >= 0"),
    ("{energy: 0, dipole: 0}", "every loss weight is 0"),
    ("{polarizability: 1}", "unknown target.*polarizability; valid: energy \\(eV\\)"),
    ("{}", "non-empty mapping"),
    ("3", "must be a mapping"),
    ("{charges: yes}", "train.targets.charges must be a number"),
])
def test_bad_target_weights(value, message):
    with pytest.raises(ConfigError, match=message):
        load_config({}, [f"train.targets={value}"])
