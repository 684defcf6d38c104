"""Processed-data cache: content-keyed, written atomically, loaded safely, rebuilt when stale.

One file per (source, cutoff) under the data directory (``$IRREPSCOPE_DATA_DIR`` or
``~/.cache/irrepscope``). It holds tensors and a JSON metadata string, saved with ``torch.save``
and read with ``torch.load(weights_only=True)`` (no arbitrary unpickling). Its key hashes the
source files' fingerprints (name, size, mtime, first and last MiB), the processing parameters
and ``FORMAT_VERSION``; a file whose key differs, or that cannot be read, is reported in one line
and rebuilt, never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

FORMAT_VERSION = 1
DATA_DIR_ENV = "IRREPSCOPE_DATA_DIR"
_EDGE = 1 << 20  # bytes hashed at each end of a source file
_ARRAYS = ("z", "pos", "atom_ptr", "y", "idx", "bond_local", "bond_ptr", "radius_count")


def default_data_dir(data_dir: str | Path | None = None) -> Path:
    """``data_dir``, else $IRREPSCOPE_DATA_DIR, else ~/.cache/irrepscope."""
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    return Path.home() / ".cache" / "irrepscope"


def file_fingerprint(path: Path) -> str:
    """sha256 over name, size, mtime and the first and last MiB of ``path``."""
    stat = path.stat()
    h = hashlib.sha256(f"{path.name}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    with open(path, "rb") as f:
        h.update(f.read(_EDGE))
        if stat.st_size > _EDGE:
            f.seek(max(stat.st_size - _EDGE, _EDGE))
            h.update(f.read(_EDGE))
    return h.hexdigest()


def cache_key(files: list[Path], params: dict) -> tuple[str, dict]:
    """(hex key, the JSON-friendly description it hashes) for sources ``files`` and ``params``."""
    described = {"format_version": FORMAT_VERSION, "params": params,
                 "sources": {str(p): file_fingerprint(p) for p in files}}
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


def save(path: Path, key: str, described: dict, processed: dict) -> None:
    """Write ``processed`` (see ``process.process``) to ``path`` through a temporary file."""
    payload = {name: torch.from_numpy(np.ascontiguousarray(processed[name])) for name in _ARRAYS}
    payload["smiles"] = "\n".join(processed["smiles"])
    payload["key"] = key
    payload["meta"] = json.dumps({**processed["meta"], "key": described})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load(path: Path, key: str, described: dict, report: bool = True) -> dict | None:
    """The cached arrays at ``path`` if its key is ``key``; None (reported in one line to
    stderr) when it is missing, corrupt or stale."""
    if not path.exists():
        return None
    try:
        payload = torch.load(path, weights_only=True, map_location="cpu")
        meta = json.loads(payload["meta"])
        arrays = {name: payload[name].numpy() for name in _ARRAYS}
        smiles = payload["smiles"].split("\n") if payload["smiles"] else []
        stored_key = payload["key"]
        if len(smiles) != len(arrays["y"]):
            smiles = [""] * len(arrays["y"]) if not payload["smiles"] else smiles
        consistent = (len(arrays["atom_ptr"]) == len(arrays["y"]) + 1 == len(smiles) + 1
                      and int(arrays["atom_ptr"][-1]) == len(arrays["z"]))
        if not consistent:
            raise ValueError("array lengths do not agree")
    except Exception as err:  # any failure to read means corrupt: rebuild, never use
        if report:
            print(f"irrepscope: cache {path} is corrupt ({type(err).__name__}: "
                  f"{str(err)[:120]}); rebuilding it", file=sys.stderr)
        return None
    if stored_key != key:
        if report:
            print(f"irrepscope: cache {path} is stale ({_why_stale(meta.get('key', {}), described)}"
                  "); rebuilding it", file=sys.stderr)
        return None
    return {**arrays, "smiles": smiles, "meta": meta}
