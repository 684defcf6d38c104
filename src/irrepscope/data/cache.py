"""Processed-data cache: content-keyed, checksummed, written atomically, loaded safely.

One file per (source, cutoff) under the data directory (``$IRREPSCOPE_DATA_DIR`` or
``~/.cache/irrepscope``). It holds tensors and a JSON metadata string, saved with ``torch.save``
and read with ``torch.load(weights_only=True)`` (no arbitrary unpickling). Its key hashes the
source files' names and contents (sha256; not their paths or modification times, so copies of
the same files share one cache), the processing parameters and ``FORMAT_VERSION``. The file also
stores a sha256 of its own arrays and text, checked on every load, so bytes changed in place
(same size) are caught. A file whose key differs, whose checksum or array lengths disagree, or
that cannot be read is reported in one line and rebuilt, never used.

Source hashes are remembered in ``source_hashes.json`` in the data directory, keyed on (path,
size, modification time), so a run hashes the CSVs (230 MB) only when they change.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from irrepscope.errors import DiskFullError
from irrepscope.files import atomic_write_bytes, atomic_write_text, content_problem, short_reason

# 2: bond indices as wide as the largest molecule needs; payload checksum
# 3: Mulliken charges, dipoles and quadrupoles (data.targets)
FORMAT_VERSION = 3
DATA_DIR_ENV = "IRREPSCOPE_DATA_DIR"
HASH_MEMO = "source_hashes.json"
_ARRAYS = ("z", "pos", "atom_ptr", "y", "idx", "bond_local", "bond_ptr", "radius_count",
           "charges", "dipole", "quadrupole")


def default_data_dir(data_dir: str | Path | None = None) -> Path:
    """``data_dir``, else $IRREPSCOPE_DATA_DIR, else ~/.cache/irrepscope."""
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    return Path.home() / ".cache" / "irrepscope"


def file_sha256(path: Path) -> str:
    """sha256 of the bytes of ``path``."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def _read_memo(path: Path) -> dict:
    try:
        memo = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return memo if isinstance(memo, dict) else {}


def source_hashes(files: list[Path], memo_dir: Path | None = None) -> dict[str, str]:
    """{file name: sha256 of its content}, reusing hashes remembered in ``memo_dir``."""
    memo_path = memo_dir / HASH_MEMO if memo_dir is not None else None
    memo = _read_memo(memo_path) if memo_path is not None else {}
    out, changed = {}, False
    for path in files:
        stat = path.stat()
        stamp = [stat.st_size, stat.st_mtime_ns]
        entry = memo.get(str(path.resolve()))
        if not (isinstance(entry, dict) and entry.get("stamp") == stamp
                and isinstance(entry.get("sha256"), str)):
            entry = {"stamp": stamp, "sha256": file_sha256(path)}
            memo[str(path.resolve())], changed = entry, True
        out[path.name] = entry["sha256"]
    if changed and memo_path is not None:
        # a read-only or full data dir only costs the re-hash next time
        with contextlib.suppress(OSError, DiskFullError):
            memo_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(memo_path, json.dumps(memo, indent=1, sort_keys=True))
    return out


def cache_key(files: list[Path], params: dict, memo_dir: Path | None = None
              ) -> tuple[str, dict]:
    """(hex key, the JSON-friendly description it hashes) for sources ``files`` and ``params``."""
    described = {"format_version": FORMAT_VERSION, "params": params,
                 "sources": source_hashes(files, memo_dir)}
    text = json.dumps(described, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest(), described


def cache_file(data_dir: Path, tag: str, cutoff: float) -> Path:
    """``data_dir/<tag>_cutoff<cutoff>.pt``."""
    return data_dir / f"{tag}_cutoff{cutoff:g}.pt"


def _why_stale(old: dict, new: dict) -> str:
    if old.get("format_version") != new["format_version"]:
        return f"format version {old.get('format_version')} -> {new['format_version']}"
    if old.get("sources") != new["sources"]:
        return "its source files changed"
    return "its processing parameters changed"


def write_problem(folder: Path) -> str | None:
    """Why no cache file can be written in ``folder`` (None when a test file can be)."""
    probe = folder / f".write_test.{os.getpid()}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
    except OSError as err:
        return f"{type(err).__name__}: {err.strerror or err}"
    finally:
        with contextlib.suppress(OSError):
            probe.unlink(missing_ok=True)
    return None


class CacheWriteError(OSError):
    """The cache file cannot be written (read-only or full folder); the data is still usable."""


def payload_checksum(payload: dict) -> str:
    """sha256 over the arrays (name, dtype, shape, bytes) and the text entries of a cache file."""
    h = hashlib.sha256()
    for name in _ARRAYS:
        array = payload[name].numpy()
        h.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        h.update(np.ascontiguousarray(array).tobytes())
    for name in ("smiles", "key", "meta"):
        h.update(f"|{name}|".encode() + payload[name].encode())
    return h.hexdigest()


def save(path: Path, key: str, described: dict, processed: dict) -> None:
    """Write ``processed`` (see ``process.process``) to ``path`` atomically
    (``irrepscope.files``); ``CacheWriteError`` when the folder does not take it."""
    payload = {name: torch.from_numpy(np.ascontiguousarray(processed[name])) for name in _ARRAYS}
    payload["smiles"] = "\n".join(processed["smiles"])
    payload["key"] = key
    payload["meta"] = json.dumps({**processed["meta"], "key": described})
    payload["sha256"] = payload_checksum(payload)
    buffer = io.BytesIO()
    torch.save(payload, buffer)  # in memory first: the size is known, errors are OSErrors
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buffer.getvalue())
    except DiskFullError as err:
        raise CacheWriteError(f"no space left: it needs {err.needed}, {err.free} free") \
            from None
    except OSError as err:
        raise CacheWriteError(f"{type(err).__name__}: {str(err)[:160]}") from err


def _check_payload(payload: dict, arrays: dict, smiles: list[str]) -> None:
    """ValueError naming the first inconsistency of a loaded cache file."""
    if payload.get("sha256") != payload_checksum(payload):
        raise ValueError("checksum mismatch: bytes inside the file changed after it was written")
    counts = np.diff(arrays["atom_ptr"])
    bonds, local = np.diff(arrays["bond_ptr"]), arrays["bond_local"]
    if not (len(arrays["atom_ptr"]) == len(arrays["y"]) + 1 == len(smiles) + 1
            == len(arrays["bond_ptr"]) and int(arrays["atom_ptr"][-1]) == len(arrays["z"])
            and int(arrays["bond_ptr"][-1]) == local.shape[1]):
        raise ValueError("array lengths do not agree")
    for name, size in (("charges", len(arrays["z"])), ("dipole", len(arrays["y"])),
                       ("quadrupole", len(arrays["y"]))):
        if len(arrays[name]) not in (0, size):
            raise ValueError(f"{name} has {len(arrays[name])} rows, not 0 or {size}")
    limit = np.repeat(counts, bonds)
    if ((local < 0) | (local >= limit)).any():
        raise ValueError("bond indices point outside their molecule")


def load(path: Path, key: str, described: dict, report: bool = True) -> dict | None:
    """The cached arrays at ``path`` if its key is ``key``; None (reported in one line to
    stderr) when it is missing, corrupt (unreadable, checksum or lengths wrong) or stale."""
    if not path.exists():
        return None
    try:
        payload = torch.load(path, weights_only=True, map_location="cpu")
        meta = json.loads(payload["meta"])
        current = all(name in payload for name in _ARRAYS)  # else an older format: stale
        arrays = {name: payload[name].numpy() for name in _ARRAYS if name in payload}
        smiles = payload["smiles"].split("\n") if payload["smiles"] else []
        if len(smiles) != len(arrays["y"]):
            smiles = [""] * len(arrays["y"]) if not payload["smiles"] else smiles
        if (current and "sha256" in payload) or payload["key"] == key:
            _check_payload(payload, arrays, smiles)
        if payload["key"] != key:
            if report:
                print(f"irrepscope: cache {path} is stale "
                      f"({_why_stale(meta.get('key', {}), described)}); rebuilding it",
                      file=sys.stderr)
            return None
    except Exception as err:  # any failure to read means corrupt: rebuild, never use
        if report:
            print(f"irrepscope: cache {path} is corrupt "
                  f"({content_problem(path) or short_reason(err)}); rebuilding it",
                  file=sys.stderr)
        return None
    return {**arrays, "smiles": smiles, "meta": meta}
