"""The demo's run reuse (same finished config reused, unfinished resumed, different refused)
and its runs per seed."""

from __future__ import annotations

import pytest

from irrepscope.analysis import demo
from irrepscope.errors import RunDirError
from irrepscope.train import run as train_run
from irrepscope.train.config import load_config


@pytest.fixture()
def calls(monkeypatch) -> list:
    record: list = []

    def fake_train(config, run_dir, resume=False, callbacks=()):
        record.append((config.model.orders, run_dir.name, resume))
        return run_dir

    monkeypatch.setattr(train_run, "train", fake_train)
    return record


def test_demo_configs_are_found() -> None:
    folder = demo.demo_config_dir()
    assert load_config(folder / "l012_h16.yaml").model.orders == [0, 1, 2]
    assert load_config(folder / "l03456_h16.yaml").model.orders == [0, 3, 4, 5, 6]


def test_fresh_run_is_trained(calls, tmp_path) -> None:
    config = demo.demo_config_dir() / "l012_h16.yaml"
    _, note = demo.train_or_reuse(config, tmp_path / "l012_h16")
    assert calls == [([0, 1, 2], "l012_h16", False)] and "trained" in note


def test_finished_run_of_same_config_is_reused(calls, tmp_path) -> None:
    config = demo.demo_config_dir() / "l012_h16.yaml"
    run_dir = tmp_path / "l012_h16"
    run_dir.mkdir()
    train_run.write_run_config(load_config(config), run_dir)
    (run_dir / "last.ckpt").write_text("x")
    _, note = demo.train_or_reuse(config, run_dir)
    assert calls == [([0, 1, 2], "l012_h16", True)] and "resumed" in note
    (run_dir / "best.ckpt").write_text("x")
    (run_dir / "test_metrics.json").write_text("{}")
    _, note = demo.train_or_reuse(config, run_dir)
    assert len(calls) == 1 and "reused" in note
    with pytest.raises(RunDirError, match="model.hidden"):
        demo.train_or_reuse(config, run_dir, overrides=["model.hidden=8"])
    assert len(calls) == 1


def test_demo_with_seeds_trains_each_config_per_seed(monkeypatch, tmp_path) -> None:
    from irrepscope.analysis import report

    trained, compared = [], []

    def fake_train(config, run_dir, resume=False, callbacks=()):
        trained.append((run_dir.name, config.seed, config.split_seed))
        return run_dir

    monkeypatch.setattr(train_run, "train", fake_train)
    monkeypatch.setattr(report, "analyze_run", lambda run_dir, progress=True: run_dir)
    monkeypatch.setattr(report, "compare_runs", lambda run_dirs, out, progress, notes:
                        compared.append(([d.name for d in run_dirs], notes)) or out)
    demo.run_demo(tmp_path, progress=False, seeds="3,7")
    assert trained == [("l012_h16_s3", 3, 21616), ("l012_h16_s7", 7, 21616),
                       ("l03456_h16_s3", 3, 21616), ("l03456_h16_s7", 7, 21616)]
    names, notes = compared[0]
    assert names == [name for name, _, _ in trained]
    assert "2 seed(s) per config; split fixed: every seed trains on its config's own split" in notes
    trained.clear()
    demo.run_demo(tmp_path / "varied", progress=False, seeds=2, vary_split=True)
    assert trained == [("l012_h16_s21616", 21616, 21616), ("l012_h16_s21617", 21617, 21617),
                       ("l03456_h16_s21616", 21616, 21616),
                       ("l03456_h16_s21617", 21617, 21617)]


def test_demo_with_one_seed_keeps_todays_names(tmp_path) -> None:
    runs = demo.demo_runs(tmp_path, seeds=1)
    assert [(run_dir.name, extra) for _, run_dir, extra in runs] == [("l012_h16", []),
                                                                     ("l03456_h16", [])]
