"""A full disk under every writer (a patched temporary file that takes only so many bytes, then
raises ENOSPC): one line naming the file and the space it needs, no temporary file left, the
previous file intact, a non-zero exit; and the helpers that describe unreadable files."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from e3nn import o3

from irrepscope import files
from irrepscope.analysis.features import FeatureSet, Layer, save_features
from irrepscope.analysis.figures import figure_utilization
from irrepscope.analysis.report import write_report
from irrepscope.cli import main
from irrepscope.data import load_dataset
from irrepscope.data.splits import load_split, make_split, save_split
from irrepscope.errors import DiskFullError
from irrepscope.train.run_records import load_checkpoint, read_metrics


class _Full:
    """A file handle that takes ``room`` more bytes (or characters), then raises ENOSPC."""

    def __init__(self, handle: Any, room: int) -> None:
        self.handle, self.room = handle, room

    def write(self, data: Any) -> int:
        if len(data) > self.room:
            self.handle.write(data[:self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.handle.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)

    def __enter__(self) -> _Full:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.handle.close()


@pytest.fixture
def full_disk(monkeypatch):
    """``full_disk(name, skip=0, room=64)``: the (skip+1)-th write of a file whose name starts
    with ``name`` (and every later one) finds only ``room`` bytes of free space."""
    def fill(name: str, skip: int = 0, room: int = 64) -> None:
        seen = [0]
        real = files._open_temp

        def open_temp(tmp: Path, mode: str) -> Any:
            handle = real(tmp, mode)
            if not tmp.name.startswith(f".{name}"):
                return handle
            seen[0] += 1
            return _Full(handle, room) if seen[0] > skip else handle

        monkeypatch.setattr(files, "_open_temp", open_temp)
    return fill


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if ".tmp" in p.name]


def _one_line(err: str, path: Path) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"irrepscope: error: no space left on the device for {path}: it "
                               f"needs "), lines[0]
    assert "free there" in lines[0]


# (file, how many writes of it succeed first): the run records of `irrepscope train`
TRAIN_WRITERS = [("config.yaml", 0), ("split.npz", 0), ("last.ckpt", 1), ("metrics.csv", 1),
                 ("test_metrics.json", 0)]


@pytest.mark.parametrize(("name", "skip"), TRAIN_WRITERS, ids=[n for n, _ in TRAIN_WRITERS])
def test_train_on_a_full_disk(name, skip, tiny_settings, tmp_path, full_disk, capsys,
                              one_thread):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_settings))  # 2 epochs
    run = tmp_path / "run"
    full_disk(name, skip)
    capsys.readouterr()
    assert main(["train", "--config", str(config), "--run-dir", str(run)]) == 1
    err = capsys.readouterr().err
    _one_line("\n".join(x for x in err.splitlines() if "error" in x), run / name)
    assert not _temporaries(run)
    if name == "last.ckpt":  # the first epoch's files are intact
        assert load_checkpoint(run / "last.ckpt")["epoch"] == 0
    if name == "metrics.csv":  # behind last.ckpt (epoch 2 committed), as --resume repairs
        assert load_checkpoint(run / "last.ckpt")["epoch"] == 1
    if name in ("last.ckpt", "metrics.csv"):
        assert len(read_metrics(run / "metrics.csv")) == 1


def test_predict_output_on_a_full_disk(tiny_run, tiny_run_test_xyz, tmp_path, full_disk, capsys):
    out = tmp_path / "predictions.csv"
    out.write_text("previous predictions\n")
    full_disk(out.name)
    capsys.readouterr()
    assert main(["predict", str(tiny_run), "--xyz", str(tiny_run_test_xyz), "--out",
                 str(out)]) == 1
    _one_line(capsys.readouterr().err, out)
    assert out.read_text() == "previous predictions\n" and not _temporaries(tmp_path)


def test_cache_on_a_full_disk_is_left_out_in_one_line(qm9_slice, tmp_path, full_disk, capsys):
    folder, _ = qm9_slice
    data_dir = tmp_path / "cache"
    full_disk("qm9_")
    capsys.readouterr()
    dataset = load_dataset(data_dir=data_dir, qm9_dir=folder, progress=False)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(dataset) > 0 and dataset.cache_path is None
    assert len(err) == 1 and "cannot write cache" in err[0], err
    assert "(no space left: it needs " in err[0] and "free); continuing without it" in err[0]
    assert not _temporaries(data_dir) and not list(data_dir.glob("*.pt"))


def _features() -> FeatureSet:
    rng = np.random.default_rng(0)
    return FeatureSet([Layer("last", rng.normal(size=(6, 4)), o3.Irreps("1x0e+1x1o"))])


def _split(path: Path) -> Path:
    return save_split(make_split(20, seed=1), path)


def _report(path: Path) -> Path:
    return write_report([("h1", "a report"), ("p", "text " * 100)], path.parent, "title")


def _figure(path: Path) -> Path:
    rows = [{"l": l, "variance_share": 0.5, "probe_r2_energy": 0.1} for l in (0, 1)]
    return figure_utilization(rows, path)


# public writers outside training: (what writes, the file it writes)
WRITERS = {"features": (lambda p: save_features(_features(), p), "features.npz"),
           "split": (_split, "split.npz"),
           "report": (_report, "report.html"),
           "figure": (_figure, "utilization.png")}


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_other_writers_on_a_full_disk_keep_the_previous_file(writer, tmp_path, full_disk):
    write, name = WRITERS[writer]
    path = tmp_path / name
    write(path)
    before = path.read_bytes()
    full_disk(name, room=16)
    with pytest.raises(DiskFullError) as err:
        write(path)
    needs = files.format_bytes(len(path.read_bytes())) if writer == "report" else \
        "more than 16 bytes"  # whole text known in advance / streamed
    assert str(err.value).startswith(f"no space left on the device for {path}: it needs {needs}")
    assert path.read_bytes() == before and not _temporaries(tmp_path)


def test_a_kill_inside_a_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "split.npz"
    _split(path)

    class Killed(BaseException):
        pass

    def killed_savez(handle, **arrays):
        handle.write(b"half")
        raise Killed

    monkeypatch.setattr(np, "savez", killed_savez)
    with pytest.raises(Killed):
        _split(path)
    assert load_split(path).seed == 1 and not _temporaries(tmp_path)


def test_stale_temporaries_of_any_record_are_removed(tmp_path):
    names = [".baseline.json.4242.tmp", ".targets.json.7.tmp", ".split.12.tmp.npz",
             ".last.ckpt.99.tmp"]
    for name in names:
        (tmp_path / name).write_bytes(b"half")
    (tmp_path / ".keep.tmp").write_text("not ours")
    removed = files.remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == sorted(names)
    assert [p.name for p in tmp_path.iterdir()] == [".keep.tmp"]


@pytest.mark.parametrize(("content", "expected"), [
    (b"", "empty: 0 bytes"),
    (bytes(4096), "all 4,096 bytes are zero"),
    (b"just text", "it does not start like a zip archive"),
    (b"PK\x03\x04rest", None)])
def test_content_problem(content, expected, tmp_path):
    path = tmp_path / "file.pt"
    path.write_bytes(content)
    problem = files.content_problem(path)
    assert problem is None if expected is None else problem.startswith(expected)


def test_short_reason_drops_torch_advice_and_escapes():
    err = Exception("Weights only load failed. This file can still be loaded, \x1b[1mdo those "
                    "steps only if you trust the source\x1b[0m.\n\tWeightsUnpickler error: "
                    "Unsupported global: GLOBAL fractions.Fraction was not an allowed global. "
                    "Please use torch.serialization.add_safe_globals")
    assert files.short_reason(err) == ("Exception: Unsupported global: GLOBAL fractions.Fraction "
                                       "was not an allowed global")
    assert "\x1b" not in files.short_reason(RuntimeError("\x1b[1mbad\x1b[0m thing. more"))


def test_disk_full_message_names_needed_and_free_space(tmp_path):
    err = files.disk_full_error(tmp_path / "x.ckpt", needed=2_500_000)
    assert f"for {tmp_path / 'x.ckpt'}: it needs 2.5 MB, " in str(err)
    assert err.needed == "2.5 MB" and err.free.endswith("B")
    assert json.dumps(str(err))  # one line, plain text
    assert "\n" not in str(err)
