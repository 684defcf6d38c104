"""`irrepscope bench recipe`: which overrides each line trains with, and the recorded table."""

from __future__ import annotations

import json

from irrepscope.analysis import demo as demo_module
from irrepscope.bench import recipe
from irrepscope.train.config import load_config


def _effective(job) -> object:
    _, _, config_path, _, overrides = job
    return load_config(config_path, overrides)


def test_each_line_adds_one_part_to_the_demo_config() -> None:
    jobs = recipe.recipe_jobs()
    assert [j[0] for j in jobs] == ["l012_h16"] * 4 + ["l03456_h16"] * 4
    configs = [_effective(j) for j in jobs[:4]]
    paper, refs, schedule, ema = configs
    assert (paper.model.energy_reference, paper.model.readout_init) == ("global_mean_std",
                                                                        "random")
    assert (paper.train.lr, paper.train.lr_schedule, paper.train.ema_decay) == (
        0.001, "constant", None)
    assert refs.model.energy_reference == "element_least_squares"
    assert refs.model.readout_init == "zero" and refs.train.lr_schedule == "constant"
    assert (schedule.train.lr, schedule.train.lr_schedule, schedule.train.warmup_steps) == (
        0.003, "warmup_cosine", 100) and schedule.train.ema_decay is None
    demo = load_config(jobs[3][2])
    assert ema.model == demo.model and ema.train.ema_decay == demo.train.ema_decay == 0.99
    assert {c.seed for c in configs} == {demo.seed}  # same split and initial weights
    quick = [_effective(j) for j in recipe.recipe_jobs(quick=True)[:4]]
    assert [c.train.warmup_steps for c in quick] == [0, 0, 1, 1]
    assert {c.data.subset for c in quick} == {120}


def test_table_is_recorded(monkeypatch, tmp_path) -> None:
    trained = []

    def fake_train_or_reuse(config_path, run_dir, overrides):
        trained.append(run_dir)
        run_dir.mkdir(parents=True)
        (run_dir / "test_metrics.json").write_text(json.dumps(
            {"test_mse": 0.3 / len(trained), "test_mae": 0.4, "baseline_test_mse": 1.2,
             "wall_time_s": 12.0}))
        return run_dir, "trained"

    monkeypatch.setattr(demo_module, "train_or_reuse", fake_train_or_reuse)
    record = tmp_path / "benchmarks.md"
    body = recipe.run(record=record, out=tmp_path / "runs")
    assert len(trained) == 8 and len(set(trained)) == 8
    assert "| l012_h16 | paper (global mean/std, constant lr 1e-3) | 0.3000 | 0.4000 | 1.2000 " \
           "| 0.250 | 12 |" in body
    assert "<!-- bench:recipe:start -->" in record.read_text()


def test_unfinished_lines_are_marked(tmp_path) -> None:
    body = recipe.record_table(False, None, tmp_path / "runs", 0.0)
    assert body.count("| not finished |") == 8 and "8 of the 8 runs did not finish" in body
