"""A kill at every step of the run directory's commit sequence, then --resume: the uninterrupted
run's records exactly; damaged checkpoints: one message naming the file, the other one used."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from irrepscope import files
from irrepscope.data.cache import HASH_MEMO
from irrepscope.errors import RunDirError
from irrepscope.train import run_records
from irrepscope.train.run import load_trained_model, train
from irrepscope.train.run_records import (
    CHECKSUM_KEY,
    RECORD_KEY,
    load_checkpoint,
    read_metrics,
)

TIMING = {"epoch_time_s", "train_mol_per_s", "wall_time_s"}  # wall-clock values, may differ
OVERRIDES = ("train.max_epochs=3", "train.limit_train_batches=2")


class Killed(BaseException):
    """Stands for ``kill -9`` at that instant (nothing after it runs)."""


def _outside_run(path: Path) -> bool:
    """The data cache's files (written by whichever run builds the cache first)."""
    return path.name == HASH_MEMO or path.suffix == ".pt"


def _trace(calls: list[tuple[str, str]], kill_at: int | None = None) -> pytest.MonkeyPatch:
    """Patch the records' two write steps to log (step, file name) and, at call ``kill_at``,
    die: half the bytes written for a temporary file, nothing done for a rename."""
    write, replace = files._write_temp, files._replace

    def traced_write(path: Path, data: bytes) -> Path:
        if _outside_run(path):
            return write(path, data)
        calls.append(("write", path.name))
        if len(calls) - 1 == kill_at:
            path.with_name(f".{path.name}.{os.getpid()}.tmp").write_bytes(data[:len(data) // 2])
            raise Killed
        return write(path, data)

    def traced_replace(tmp: Path, path: Path) -> None:
        if _outside_run(path):
            return replace(tmp, path)
        calls.append(("rename", path.name))
        if len(calls) - 1 == kill_at:
            raise Killed
        replace(tmp, path)

    patch = pytest.MonkeyPatch()
    patch.setattr(files, "_write_temp", traced_write)
    patch.setattr(files, "_replace", traced_replace)
    return patch


@pytest.fixture(scope="module")
def reference(tiny_config, tmp_path_factory) -> tuple[Path, list[tuple[str, str]]]:
    """An uninterrupted 3-epoch run and the sequence of its record writes."""
    calls: list[tuple[str, str]] = []
    patch = _trace(calls)
    try:
        run = train(tiny_config(*OVERRIDES), tmp_path_factory.mktemp("reference") / "run")
    finally:
        patch.undo()
    return run, calls


def _commit_steps(run: Path, calls: list[tuple[str, str]]) -> list[int]:
    """Indices in ``calls`` of the commit of the last epoch > 0 that improved val_mse (so that
    best.ckpt is replaced), and of the test_metrics.json write."""
    rows = read_metrics(run / "metrics.csv")
    improving = [r["epoch"] for i, r in enumerate(rows)
                 if i > 0 and r["val_mse"] < min(q["val_mse"] for q in rows[:i])]
    assert improving, "the tiny run should improve after its first epoch"
    starts = [i for i, c in enumerate(calls) if c == ("write", "last.ckpt")]
    first = starts[improving[-1]]
    steps = list(range(first, first + 6))
    assert [calls[i] for i in steps] == [
        ("write", "last.ckpt"), ("rename", "last.ckpt"), ("write", "best.ckpt"),
        ("rename", "best.ckpt"), ("write", "metrics.csv"), ("rename", "metrics.csv")]
    steps += [i for i, c in enumerate(calls) if c[1] == "test_metrics.json"]
    assert len(steps) == 8
    return steps


def _same(a, b, where: str = "") -> None:
    """Recursive equality of loaded records, tensors exactly, timing values ignored."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        keys = set(a) - TIMING - {CHECKSUM_KEY, "loops"}
        assert keys == set(b) - TIMING - {CHECKSUM_KEY, "loops"}, where
        for k in keys:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def assert_same_records(run: Path, reference: Path) -> None:
    """The run directory's records equal the reference run's (timings aside)."""
    for name in ("config.yaml", "split.npz"):
        assert (run / name).read_bytes() == (reference / name).read_bytes(), name
    _same(read_metrics(run / "metrics.csv"), read_metrics(reference / "metrics.csv"), "metrics")
    for name in ("test_metrics.json",):
        _same(json.loads((run / name).read_text()), json.loads((reference / name).read_text()),
              name)
    for name in ("last.ckpt", "best.ckpt"):
        _same(load_checkpoint(run / name), load_checkpoint(reference / name), name)
    assert not list(run.glob(".*.tmp")), "temporary files left behind"


def test_kill_at_every_commit_step_then_resume(reference, tiny_config, tmp_path, capsys):
    ref, calls = reference
    for step in _commit_steps(ref, calls):
        run = tmp_path / f"killed_at_{step}"
        patch = _trace([], kill_at=step)
        try:
            with pytest.raises(Killed):
                train(tiny_config(*OVERRIDES), run)
        finally:
            patch.undo()
        kind, name = calls[step]
        leftover = list(run.glob(f".{name}.*.tmp"))
        assert len(leftover) == 1, (step, calls[step])
        if kind == "write":  # as if another process had died: not this one's file name
            leftover[0].rename(run / f".{name}.999999.tmp")
        capsys.readouterr()
        train(tiny_config(*OVERRIDES), run, resume=True)
        err = capsys.readouterr().err
        assert_same_records(run, ref)
        if name == "best.ckpt":  # last.ckpt committed, best.ckpt and metrics.csv behind it
            assert "repaired" in err and "restored best.ckpt from last.ckpt" in err, err


def test_damaged_last_checkpoint_resumes_from_best(reference, tiny_config, tmp_path, capsys):
    """Killed before the last epoch's commit, then last.ckpt damaged: the run goes on from
    best.ckpt, trains the later epochs again and ends with the reference's records."""
    ref, calls = reference
    run = tmp_path / "run"
    patch = _trace([], kill_at=_commit_steps(ref, calls)[0])
    try:
        with pytest.raises(Killed):
            train(tiny_config(*OVERRIDES), run)
    finally:
        patch.undo()
    best_epoch = load_checkpoint(run / "best.ckpt")["epoch"]
    (run / "last.ckpt").write_bytes((run / "last.ckpt").read_bytes()[:1000])
    (run / "metrics.csv").write_text("damaged")
    capsys.readouterr()
    train(tiny_config(*OVERRIDES), run, resume=True)
    err = capsys.readouterr().err
    assert f"{run / 'last.ckpt'} is damaged" in err
    assert f"Using best.ckpt (epoch {best_epoch})" in err
    assert "later epochs are trained again" in err
    assert_same_records(run, ref)


def _flip_inside_weights(path: Path) -> bytes:
    data = bytearray(path.read_bytes())
    weights = max(load_checkpoint(path)["state_dict"].values(), key=torch.Tensor.numel)
    raw = weights.reshape(-1).view(torch.uint8).numpy().tobytes()
    at = bytes(data).find(raw) + len(raw) // 2
    data[at] ^= 0x10
    return bytes(data)


DAMAGE: dict[str, tuple[Callable[[Path], bytes], str]] = {
    "truncated": (lambda p: p.read_bytes()[:len(p.read_bytes()) // 2], "is damaged (truncated"),
    "empty": (lambda p: b"", "is damaged (empty"),
    "zeroed": (lambda p: bytes(len(p.read_bytes())), "is damaged (all [0-9,]+ bytes are zero"),
    "bit_flip": (_flip_inside_weights, "is damaged (checksum mismatch"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_checkpoint_gives_one_message_and_the_other_is_used(reference, tmp_path, capsys,
                                                                     damage):
    ref, _ = reference
    run = tmp_path / "run"
    shutil.copytree(ref, run)
    make, message = DAMAGE[damage]
    best = run / "best.ckpt"
    best.write_bytes(make(best))
    with pytest.raises(RunDirError, match=message.replace("(", r"\(")) as err:
        load_checkpoint(best)
    assert str(best) in str(err.value) and "weights_only" not in str(err.value)
    model, _ = load_trained_model(run)
    expected, _ = load_trained_model(ref, checkpoint="last")
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), expected.parameters(),
                                                 strict=True))
    assert f"{best} is damaged" in capsys.readouterr().err
    (run / "last.ckpt").write_bytes(b"")
    with pytest.raises(RunDirError, match="best.ckpt is damaged.*last.ckpt is damaged"):
        load_trained_model(run)


def test_checkpoint_with_code_is_refused_without_unsafe_advice(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": os.system}, path)
    with pytest.raises(RunDirError, match="was refused: it holds Python objects") as err:
        load_checkpoint(path)
    assert "weights_only=False" not in str(err.value) and str(path) in str(err.value)


def test_checkpoint_carries_the_record_and_a_checksum(reference):
    ref, _ = reference
    last = load_checkpoint(ref / "last.ckpt")
    record = last["callbacks"][RECORD_KEY]
    assert [r["epoch"] for r in record["rows"]] == [0, 1, 2]
    assert last[CHECKSUM_KEY] == run_records.payload_sha256(last)
    assert read_metrics(ref / "metrics.csv")[-1]["val_mse"] == record["rows"][-1]["val_mse"]


def test_resume_with_both_checkpoints_damaged_names_both(reference, tiny_config, tmp_path):
    ref, _ = reference
    run = tmp_path / "run"
    shutil.copytree(ref, run)
    (run / "last.ckpt").write_bytes(b"")
    (run / "best.ckpt").write_bytes(b"\0" * 100)
    with pytest.raises(RunDirError, match=r"last.ckpt is damaged \(empty.*best.ckpt is damaged "
                                          r"\(all 100 bytes are zero"):
        train(tiny_config(*OVERRIDES), run, resume=True)


def test_fresh_start_after_a_kill_before_the_first_checkpoint(reference, tiny_config, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in (".config.yaml.123.tmp", ".split.123.tmp.npz", ".last.ckpt.123.tmp",
                 ".baseline.json.123.tmp", ".split.npz.77.tmp"):
        (run / name).write_bytes(b"half")
    (run / "unrelated.tmp").write_text("kept")
    train(tiny_config(*OVERRIDES), run)
    assert_same_records(run, reference[0])
    assert sorted(p.name for p in run.glob("*tmp*")) == ["unrelated.tmp"]
