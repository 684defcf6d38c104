"""Writing files so that a full disk or a kill never leaves a half-written or temporary file;
saying in a few words why a saved file cannot be read back.

Every file irrepscope writes (run records, checkpoints, caches, splits, reports, figures,
predictions, features) goes through a temporary file beside its target
(``.<name>.<pid>.tmp``), flushed to disk, then renamed onto the target: until the rename the
previous file stays intact, and an error or a signal on the way removes the temporary file.
A full disk (``ENOSPC``) or an exceeded quota (``EDQUOT``) becomes one ``DiskFullError``
naming the file, the space it needs and the space that is free. ``content_problem`` and
``short_reason`` describe unreadable files (empty, zero-filled, overwritten) without the
advice text and terminal escapes of torch's own messages.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from irrepscope.errors import DiskFullError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
TEMPORARY = re.compile(r"^\..+\.\d+\.tmp(\.npz)?$")  # .npz: the name older versions used


def temporary_path(path: Path) -> Path:
    """``.<name>.<pid>.tmp`` beside ``path``: where ``path`` is written before its rename."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def format_bytes(size: float) -> str:
    """'12.3 MB' style size (powers of 1000, as ``df -H``)."""
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` is an ``OSError`` for a full file system or an exceeded quota."""
    return isinstance(err, OSError) and err.errno in DISK_FULL


def disk_full_error(path: Path, needed: int | None = None, written: int = 0) -> DiskFullError:
    """The ``DiskFullError`` for ``path``: ``needed`` bytes (None: unknown, more than the
    ``written`` bytes that fitted), and the free space of its file system now."""
    try:
        free = format_bytes(shutil.disk_usage(path.parent).free)
    except OSError:
        free = "unknown"
    need = (format_bytes(needed) if needed is not None else
            f"more than {format_bytes(written)}" if written else "more than is free")
    return DiskFullError(f"no space left on the device for {path}: it needs {need}, {free} "
                         f"free there; free some space (or write elsewhere) and run the command "
                         f"again (nothing was half-written; a training run continues with "
                         f"--resume)", str(path), need, free)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _discard(tmp: Path, path: Path, err: BaseException, needed: int | None) -> None:
    """Remove ``tmp``; re-raise ``err`` as ``DiskFullError`` when the disk is full."""
    written = _size(tmp)
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)
    if is_disk_full(err):
        raise disk_full_error(path, needed, written) from None


def _open_temp(tmp: Path, mode: str) -> IO[Any]:
    """The temporary file ``tmp`` opened for writing (text: UTF-8, newlines untranslated)."""
    text = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
    return open(tmp, mode, **text)


def _write_temp(path: Path, data: bytes) -> Path:
    """``data`` in ``temporary_path(path)``, flushed to disk; returns that path."""
    tmp = temporary_path(path)
    try:
        with _open_temp(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException as err:
        _discard(tmp, path, err, len(data))
        raise
    return tmp


def _replace(tmp: Path, path: Path) -> None:
    """Rename ``tmp`` onto ``path`` and flush the directory entry."""
    try:
        os.replace(tmp, path)
    except BaseException as err:
        _discard(tmp, path, err, _size(tmp))
        raise
    with contextlib.suppress(OSError):  # not every file system lets a directory be fsynced
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a flushed temporary file in the same folder and a rename."""
    path = Path(path)
    _replace(_write_temp(path, data), path)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode())


@contextlib.contextmanager
def atomic_output(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """A handle (``mode`` "wb" or "w"; text with UTF-8 and untranslated newlines, as the csv
    module wants) on a temporary file that replaces ``path`` when the block ends without error."""
    path = Path(path)
    tmp = temporary_path(path)
    try:
        with _open_temp(tmp, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException as err:
        _discard(tmp, path, err, None)
        raise
    _replace(tmp, path)


def atomic_copy(source: str | Path, path: str | Path) -> None:
    """Copy the bytes of ``source`` onto ``path`` atomically."""
    atomic_write_bytes(path, Path(source).read_bytes())


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the ``.<name>.<pid>.tmp`` files in ``folder``, left by a killed process (call it
    before a command starts writing there); returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if TEMPORARY.match(p.name) and p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
ZIP_MAGIC = b"PK\x03\x04"


def _all_zero(path: Path) -> bool:
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            if block.count(0) != len(block):
                return False
    return True


def content_problem(path: Path) -> str | None:
    """What is wrong with the bytes of a file that should be a zip archive (``torch.save``,
    ``np.savez``): empty, all zeros, or another kind of file; None when it starts like one."""
    size = _size(path)
    if size == 0:
        return "empty: 0 bytes"
    with open(path, "rb") as handle:
        if handle.read(4) == ZIP_MAGIC:
            return None
    if _all_zero(path):
        return (f"all {size:,} bytes are zero: space was allocated but never written, as after "
                f"a crash or a full disk")
    return "it does not start like a zip archive: overwritten, or another kind of file"


def short_reason(err: BaseException, limit: int = 120) -> str:
    """``ClassName: first sentence`` of an exception, without terminal escapes or advice."""
    text = _ANSI.sub("", str(err))
    if "WeightsUnpickler error:" in text:  # torch's advice first, the reason after it
        text = text.split("WeightsUnpickler error:", 1)[1]
    sentence = text.strip().split("\n")[0].split(". ")[0].strip()
    if len(sentence) > limit:
        sentence = sentence[:limit - 3] + "..."
    return f"{type(err).__name__}: {sentence}" if sentence else type(err).__name__
