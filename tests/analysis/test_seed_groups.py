"""Grouping runs of one config over seeds, the tables over seeds, and the significance
statements of compare, on synthetic summaries with known answers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from irrepscope.analysis import report
from irrepscope.analysis.seed_groups import (
    compare_groups,
    group_runs,
    seed_blocks,
    seed_groups_json,
    significance_statements,
)
from irrepscope.model import ModelConfig
from irrepscope.train.config import RunConfig
from irrepscope.train.run import write_run_config


def _config(seed: int, orders=(0, 1, 2), split_seed: int | None = 1) -> RunConfig:
    config = RunConfig(seed=seed, model=ModelConfig(orders=list(orders), hidden=4))
    config.data.split_seed = split_seed
    return config


def _summary(test_mse: float, shares=(0.5, 0.3, 0.2), baseline: float = 2.0) -> dict:
    table = [{"block": 2, "l": l, "variance_share": v, "probe_r2_energy": 0.9,
              "probe_r2_nsps": 0.1, "ablation_rel_mse": 0.5, "grad_x_input_share": v}
             for l, v in enumerate(shares)]
    return {"test_mse": test_mse, "test_mae": 0.5, "baseline_test_mse": baseline,
            "last_block": 2, "table": table, "seed": 0}


def _groups(mse_a, mse_b, seeds_b=(1, 2, 3), split_b=1):
    names, summaries, configs = [], [], []
    for seed, mse in zip((1, 2, 3), mse_a, strict=True):
        names.append(f"a_s{seed}"), summaries.append(_summary(mse)), configs.append(_config(seed))
    for seed, mse in zip(seeds_b, mse_b, strict=True):
        names.append(f"b_s{seed}"), summaries.append(_summary(mse))
        configs.append(_config(seed, orders=(0, 3), split_seed=split_b))
    return group_runs(names, summaries, configs)


def test_runs_are_grouped_by_config_up_to_seed() -> None:
    names = ["a_s1", "b_s1", "a_s2", "a_again_s2", "c"]
    configs = [_config(1), _config(1, orders=(0, 3)), _config(2),
               _config(2), None]
    configs[2].train.accelerator = "gpu"  # how a run executes does not split a group
    groups = group_runs(names, [_summary(1.0)] * 5, configs)
    assert [g.names for g in groups] == [["a_s1", "a_s2"], ["b_s1"], ["a_again_s2"], ["c"]]
    assert [g.name for g in groups] == ["a", "b_s1", "a_again_s2", "c"]
    assert groups[0].seeds == [1, 2] and groups[0].split_text() == "fixed (split seed 1)"
    assert groups[3].split_text() == "unknown"
    varied = group_runs(["x_s1", "x_s2"], [_summary(1.0)] * 2,
                        [_config(1, split_seed=None), _config(2, split_seed=None)])
    assert len(varied) == 1 and varied[0].split_text() == "one per seed"


def test_clear_difference_exceeds_the_seed_spread() -> None:
    a, b = _groups([1.0, 1.1, 0.9], [2.0, 2.05, 1.95])  # differences -1, -0.95, -1.05
    test, left_out = compare_groups(a, b)
    assert left_out == 0 and test.n == 3
    assert test.mean == pytest.approx(-1.0) and test.std == pytest.approx(0.05)
    t = -1.0 / (0.05 / math.sqrt(3))
    assert test.t == pytest.approx(t)
    assert test.p == pytest.approx(1 - abs(t) / math.sqrt(t * t + 2))  # closed form, 2 df
    (statement,) = significance_statements([a, b])
    assert statement.startswith("a vs b: test MSE difference (a − b) mean -1 eV²")
    assert "exceeds seed spread (p < 0.05)" in statement


def test_noise_is_within_the_seed_spread() -> None:
    (statement,) = significance_statements(_groups([1.0, 1.5, 0.8], [1.2, 1.1, 1.0]))
    assert "within seed spread (p ≥ 0.05)" in statement


def test_unpaired_seeds_and_different_splits_cannot_decide() -> None:
    (statement,) = significance_statements(_groups([1.0, 1.1, 0.9], [2.0, 2.0, 2.0],
                                                   seeds_b=(3, 4, 5)))
    assert "cannot be decided: 1 shared seed (3)" in statement
    a, b = _groups([1.0, 1.1, 0.9], [2.0, 2.05, 1.95], split_b=2)
    test, left_out = compare_groups(a, b)
    assert test.n == 0 and left_out == 3
    assert "3 shared seed(s) left out" in significance_statements([a, b])[0]


def test_tables_over_seeds_match_the_per_seed_numbers() -> None:
    groups = _groups([1.0, 1.1, 0.9], [2.0, 2.05, 1.95])
    blocks = seed_blocks(groups)
    assert [b[1] for b in blocks if b[0] == "h2"] == [
        "Test error over seeds (mean ± std)",
        "Utilization per l over seeds (last block, mean ± std)",
        "Is the test MSE difference larger than the seed spread?"]
    errors = blocks[1][2]
    assert errors[0][:4] == ["a", "3", "1 2 3", "fixed (split seed 1)"]
    assert errors[0][4] == f"{np.mean([1.0, 1.1, 0.9]):.4g} ± {np.std([1.0, 1.1, 0.9], ddof=1):.2g}"
    assert errors[0][5] == "1: 1, 2: 1.1, 3: 0.9" and errors[0][7] == "2"  # baseline once
    assert errors[1][8] == "1 ± 0.025"  # MSE / baseline over seeds
    utilization = blocks[4][2]
    assert utilization[0][:3] == ["a", "0", "0.5 ± 0"] and len(utilization) == 6
    saved = seed_groups_json(groups)
    assert saved[0]["test_mse"] == {"1": 1.0, "2": 1.1, "3": 0.9}
    assert saved[1]["paired_t_test_vs_first"]["verdict"] == "exceeds seed spread"
    one_each = group_runs(["a", "b"], [_summary(1.0), _summary(2.0)],
                          [_config(1), _config(1, orders=(0, 3))])
    blocks = seed_blocks(one_each)  # no seed tables, but the statement says it cannot decide
    assert [b[0] for b in blocks] == ["h2", "ul", "p"] and "cannot be decided" in blocks[1][1][0]


def test_compare_groups_seeds_of_the_same_config(fake_runs, tmp_path) -> None:
    for seed, (run_dir, mse) in enumerate(zip(fake_runs, (2.0, 3.0), strict=True), start=7):
        write_run_config(_config(seed), run_dir)
        metrics = json.loads((run_dir / "test_metrics.json").read_text())
        (run_dir / "test_metrics.json").write_text(json.dumps({**metrics, "test_mse": mse}))
    report.compare_runs(fake_runs, tmp_path / "cmp", progress=False)
    md = (tmp_path / "cmp" / "report.md").read_text()
    assert "## Test error over seeds (mean ± std)" in md
    assert f"| 2.5 ± {np.std([2.0, 3.0], ddof=1):.2g} | 7: 2, 8: 3 |" in md
    assert "| fixed (split seed 1) |" in md
    assert "Is the test MSE difference" not in md  # one config: nothing to compare it with
    saved = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert saved["seed_groups"][0]["seeds"] == [7, 8]
