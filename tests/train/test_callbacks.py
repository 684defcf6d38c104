"""Run-directory writer helpers: atomic files, metrics.csv round trip, best-checkpoint state."""

from __future__ import annotations

import math
from pathlib import Path

from irrepscope.train.callbacks import RunDirCallback
from irrepscope.train.run_records import (
    METRIC_COLUMNS,
    atomic_write_text,
    read_metrics,
    write_metrics,
)


def test_atomic_writes_leave_no_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    (tmp_path / "b.txt").write_text("two")
    assert target.read_text() == (tmp_path / "b.txt").read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]


def test_metrics_round_trip(tmp_path: Path) -> None:
    rows = [{"epoch": 0, "step": 5, "train_mse": 0.1 + 0.2, "val_mse": 1e-300, "lr": 1e-3},
            {"epoch": 1, "step": 10, "train_mse": 2.5, "val_mae": 0.3, "extra": "ignored"}]
    path = tmp_path / "metrics.csv"
    write_metrics(path, rows)
    back = read_metrics(path)
    assert path.read_text().splitlines()[0] == ",".join(METRIC_COLUMNS)
    assert back[0]["train_mse"] == 0.1 + 0.2 and back[0]["val_mse"] == 1e-300  # exact floats
    assert back[0]["val_mae"] is None and back[1]["epoch"] == 1 and "extra" not in back[1]
    assert read_metrics(tmp_path / "missing.csv") == []


def test_best_tracking_state_round_trip(tmp_path: Path) -> None:
    callback = RunDirCallback(tmp_path)
    assert callback.best_val_mse == math.inf and callback.best_epoch == -1
    other = RunDirCallback(tmp_path)
    other.load_state_dict({"best_val_mse": 0.25, "best_epoch": 3})
    callback.load_state_dict(other.state_dict())
    assert (callback.best_val_mse, callback.best_epoch) == (0.25, 3)
    assert callback.last_path == tmp_path / "last.ckpt"
