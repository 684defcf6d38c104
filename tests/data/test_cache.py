"""Processed cache: reused, rebuilt after source / cutoff / format changes and corruption."""

from __future__ import annotations

import fractions
import io
import os
import pickle

import pytest
import torch
from qm9_files import basic_rows, write_part

from irrepscope.data import cache, dataset, load_dataset


@pytest.fixture
def counted(monkeypatch):
    """Counts calls of the processing step behind load_dataset."""
    calls = []
    real = dataset.process

    def wrapper(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(dataset, "process", wrapper)
    return calls


def _load(qm9_dir, data_dir, **kwargs):
    return load_dataset(data_dir=data_dir, qm9_dir=qm9_dir, progress=False, **kwargs)


def test_cache_is_reused_and_equal(qm9_dir, tmp_path, counted):
    first = _load(qm9_dir, tmp_path / "c")
    second = _load(qm9_dir, tmp_path / "c")
    assert len(counted) == 1
    assert first.cache_path == second.cache_path and first.cache_path.exists()
    for i in range(len(first)):
        a, b = first[i], second[i]
        assert torch.equal(a.pos, b.pos) and torch.equal(a.edge_index, b.edge_index)
        assert torch.equal(a.y, b.y) and a.smiles == b.smiles
    assert not [p for p in first.cache_path.parent.iterdir() if p.name.startswith(".")]
    # the other graph kind comes from the same file
    _load(qm9_dir, tmp_path / "c", graph="radius")
    assert len(counted) == 1


def test_default_data_dir_from_environment(qm9_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("IRREPSCOPE_DATA_DIR", str(tmp_path / "env"))
    ds = load_dataset(qm9_dir=qm9_dir, progress=False)
    assert ds.cache_path.parent == tmp_path / "env"


def test_source_change_rebuilds(qm9_dir, tmp_path, counted, capsys):
    _load(qm9_dir, tmp_path / "c")
    rows = basic_rows()
    rows[0]["InternalEnergy_0K_au"] = -40.5
    write_part(qm9_dir / "qm9_part1.csv", rows)
    os.utime(qm9_dir / "qm9_part1.csv", ns=(1, 1))
    ds = _load(qm9_dir, tmp_path / "c")
    assert len(counted) == 2 and "stale (its source files changed)" in capsys.readouterr().err
    assert ds[0].y.item() == pytest.approx((-40.5 + 37.846772 + 4 * 0.500273) * 27.211386246,
                                           rel=1e-6)


def test_cutoff_change_rebuilds(qm9_dir, tmp_path, counted):
    a = _load(qm9_dir, tmp_path / "c", graph="radius", cutoff=6.0)
    b = _load(qm9_dir, tmp_path / "c", graph="radius", cutoff=1.2)
    assert len(counted) == 2 and a.cache_path != b.cache_path
    assert list(a.num_edges) == [20, 12, 6] and list(b.num_edges) == [8, 6, 4]


def test_format_change_rebuilds(qm9_dir, tmp_path, counted, capsys, monkeypatch):
    _load(qm9_dir, tmp_path / "c")
    monkeypatch.setattr(cache, "FORMAT_VERSION", cache.FORMAT_VERSION + 1)
    _load(qm9_dir, tmp_path / "c")
    err = capsys.readouterr().err
    assert len(counted) == 2 and "stale (format version" in err and len(err.splitlines()) == 1


def _flip_inside_positions(path) -> bytes:
    """The file's bytes with one byte of the stored positions changed (same size)."""
    data = bytearray(path.read_bytes())
    pos = torch.load(path, weights_only=True)["pos"].numpy().tobytes()
    at = bytes(data).find(pos) + len(pos) // 2
    data[at] ^= 0x7F
    return bytes(data)


def _flip_inside_key(path) -> bytes:
    """The file's bytes with one hex digit of the stored key changed (same size)."""
    data = bytearray(path.read_bytes())
    key = torch.load(path, weights_only=True)["key"].encode()
    at = bytes(data).find(key)
    data[at] = ord("a") if data[at] != ord("a") else ord("b")
    return bytes(data)


def _unsafe_object() -> bytes:
    """A torch file holding an object that weights_only loading refuses."""
    buffer = io.BytesIO()
    torch.save({"key": fractions.Fraction(1, 3)}, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(("damage", "message"), [
    ("garbage", "is corrupt (it does not start like a zip archive"),
    ("truncated", "is corrupt (RuntimeError: PytorchStreamReader failed reading zip archive"),
    ("empty", "is corrupt (empty: 0 bytes)"), ("zeroed", "is corrupt (all "),
    ("unsafe_object", "is corrupt (UnpicklingError: Unsupported global: GLOBAL "
                      "fractions.Fraction was not an allowed global by default)"),
    ("bit_flip", "checksum mismatch"), ("key_flip", "checksum mismatch")])
def test_corruption_is_reported_and_rebuilt(qm9_dir, tmp_path, counted, capsys, damage, message):
    path = _load(qm9_dir, tmp_path / "c").cache_path
    data = path.read_bytes()
    damaged = {"garbage": lambda: b"\x80\x02not a torch file",
               "truncated": lambda: data[:len(data) // 2], "empty": lambda: b"",
               "zeroed": lambda: bytes(len(data)), "unsafe_object": _unsafe_object,
               "bit_flip": lambda: _flip_inside_positions(path),
               "key_flip": lambda: _flip_inside_key(path)}[damage]()
    assert damaged != data
    path.write_bytes(damaged)
    ds = _load(qm9_dir, tmp_path / "c")
    err = capsys.readouterr().err
    assert len(counted) == 2 and message in err and len(err.splitlines()) == 1, err
    assert "\x1b" not in err and "legacy" not in err and "weights_only" not in err
    assert str(path) in err and "rebuilding it" in err
    assert len(ds) == 3 and path.read_bytes() != b""
    _load(qm9_dir, tmp_path / "c")
    assert len(counted) == 2  # the rebuilt file is used again


def test_unsafe_pickle_is_not_loaded(qm9_dir, tmp_path, counted, capsys):
    path = _load(qm9_dir, tmp_path / "c").cache_path
    path.write_bytes(pickle.dumps({"key": os.getcwd, "meta": "{}"}))  # a callable: refused
    _load(qm9_dir, tmp_path / "c")
    assert len(counted) == 2 and "is corrupt" in capsys.readouterr().err


def test_key_follows_content_not_path_or_mtime(qm9_dir, tmp_path, counted):
    copy = tmp_path / "venv2" / "qm9"
    copy.mkdir(parents=True)
    (copy / "qm9_part1.csv").write_bytes((qm9_dir / "qm9_part1.csv").read_bytes())
    os.utime(copy / "qm9_part1.csv", ns=(5, 5))
    key_a, _ = cache.cache_key([qm9_dir / "qm9_part1.csv"], {"cutoff": 6.0})
    key_b, _ = cache.cache_key([copy / "qm9_part1.csv"], {"cutoff": 6.0})
    assert key_a == key_b
    (copy / "qm9_part1.csv").write_bytes(b"x" + (qm9_dir / "qm9_part1.csv").read_bytes()[1:])
    os.utime(copy / "qm9_part1.csv", ns=(5, 5))  # same size, same mtime, other content
    assert cache.cache_key([copy / "qm9_part1.csv"], {"cutoff": 6.0})[0] != key_a


def test_source_hashes_are_remembered(qm9_dir, tmp_path, monkeypatch):
    calls = []
    real = cache.file_sha256
    monkeypatch.setattr(cache, "file_sha256", lambda p: calls.append(p) or real(p))
    files = [qm9_dir / "qm9_part1.csv"]
    first = cache.source_hashes(files, tmp_path / "memo")
    assert cache.source_hashes(files, tmp_path / "memo") == first and len(calls) == 1
    os.utime(files[0], ns=(7, 7))  # touched: hashed again, same content, same hash
    assert cache.source_hashes(files, tmp_path / "memo") == first and len(calls) == 2
    (tmp_path / "memo" / cache.HASH_MEMO).write_text("not json")
    assert cache.source_hashes(files, tmp_path / "memo") == first and len(calls) == 3


def test_unwritable_cache_folder_continues_without_cache(qm9_dir, tmp_path, counted, capsys,
                                                         monkeypatch):
    def refuse(path, data):  # what open() raises in a folder it cannot write into
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(cache, "atomic_write_bytes", refuse)
    ds = _load(qm9_dir, tmp_path / "c")
    err = capsys.readouterr().err
    assert len(ds) == 3 and ds.cache_path is None
    assert "cannot write cache" in err and "writable folder" in err and len(err.splitlines()) == 1
    assert not list((tmp_path / "c").glob(".*.tmp"))


def test_cache_folder_that_cannot_be_made_is_reported_before_processing(qm9_dir, tmp_path,
                                                                         counted, capsys):
    (tmp_path / "a_file").write_text("")
    ds = _load(qm9_dir, tmp_path / "a_file" / "cache")
    err = capsys.readouterr().err
    assert len(ds) == 3 and ds.cache_path is None and len(counted) == 1
    assert "cannot write cache" in err and "NotADirectoryError" in err
    assert len(err.splitlines()) == 1
