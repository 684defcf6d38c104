"""Run-directory records, written so that a kill at any instant leaves a state resume repairs.

Each epoch, rank 0 commits in this order:

1. the full Lightning checkpoint, carrying a sha256 of its own payload and the run's record
   (every ``metrics.csv`` row so far and the best epoch, as ``RunDirCallback`` state), is
   written to ``.last.ckpt.<pid>.tmp`` and flushed to disk;
2. that file is renamed onto ``last.ckpt``: the commit point of the epoch;
3. ``best.ckpt`` gets the same bytes (temporary file, rename) when val_mse improved;
4. ``metrics.csv`` is rewritten from the record (temporary file, rename), and so is
   ``irreps_over_training.csv`` from the irrep tracker's rows when the run tracks irreps
   (``train.irrep_tracking``; its rows travel in the same checkpoint).

A kill before step 2 leaves the previous epoch committed, and ``--resume`` trains the epoch
again; a kill after it leaves ``best.ckpt``/``metrics.csv`` behind ``last.ckpt``, and
``repair_run_dir`` (run by ``--resume`` before training) rewrites them from last.ckpt's record.
Leftover temporary files (``irrepscope.files``) are deleted on resume. ``load_checkpoint`` is
the one reader of checkpoints: a missing, truncated, overwritten (checksum) or refused (holds
objects other than tensors and plain data) file gives one ``RunDirError`` naming it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import pickle
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from irrepscope.errors import RunDirError
from irrepscope.files import (  # noqa: F401  (re-exported: the run records' writers)
    atomic_write_bytes,
    atomic_write_text,
    content_problem,
    remove_stale_temporaries,
    short_reason,
)

METRICS_FILE = "metrics.csv"
METRIC_COLUMNS = ("epoch", "step", "train_mse", "train_mae", "train_mae_mev", "val_mse",
                  "val_mae", "val_mae_mev", "train_mol_per_s", "lr", "epoch_time_s")
TARGET_COLUMN = re.compile(r"(train|val)_(loss|(charges|dipole|quadrupole)_\w+)$")
CHECKSUM_KEY = "irrepscope_sha256"
RECORD_KEY = "RunDirCallback"  # the callback's state key in checkpoint["callbacks"]
TRACKING_FILE = "irreps_over_training.csv"
TRACKING_KEY = "IrrepTracker"  # the irrep tracker's state key in checkpoint["callbacks"]
INTEGER_COLUMNS = frozenset({"epoch", "step", "epochs_trained", "block", "l", "molecules",
                             "ablation_molecules"})
TRACKING_COLUMNS = ("epochs_trained", "block", "l", "variance_share", "probe_r2_energy",
                    "ablation_rel_mse", "molecules", "ablation_molecules", "seconds")


# --- metrics.csv -----------------------------------------------------------------------------
def metric_columns(rows: list[dict[str, Any]]) -> tuple[str, ...]:
    """``METRIC_COLUMNS`` plus the train/val columns of other targets and the weighted loss
    (``train.targets``) that ``rows`` hold, in order of appearance."""
    extra = [k for k in dict.fromkeys(k for row in rows for k in row)
             if k not in METRIC_COLUMNS and TARGET_COLUMN.match(k)]
    return (*METRIC_COLUMNS, *extra)


def metrics_text(rows: list[dict[str, Any]]) -> str:
    """CSV text of ``rows`` (dicts keyed by ``metric_columns``; floats written exactly)."""
    return rows_text(rows, metric_columns(rows))


def rows_text(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    """CSV text of ``rows`` in ``columns`` (floats written exactly, None as empty)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else repr(row[k])) for k in columns})
    return buffer.getvalue()


def write_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    """Atomically write ``rows`` as CSV."""
    atomic_write_text(path, metrics_text(rows))


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``metrics.csv`` or ``irreps_over_training.csv`` (numbers as floats, counts and
    indices in ``INTEGER_COLUMNS`` as ints)."""
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    out = []
    for row in rows:
        parsed: dict[str, Any] = {}
        for key, value in row.items():
            if value in ("", None):
                parsed[key] = None
            elif key in INTEGER_COLUMNS:
                parsed[key] = int(value)
            else:
                parsed[key] = float(value)
        out.append(parsed)
    return out


# --- checkpoints -----------------------------------------------------------------------------
def _digest(h: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, Mapping):
        h.update(b"{")
        for key in sorted(value, key=repr):
            h.update(repr(key).encode() + b":")
            _digest(h, value[key])
        h.update(b"}")
    elif isinstance(value, (list, tuple)):
        h.update(b"[")
        for item in value:
            _digest(h, item)
            h.update(b",")
        h.update(b"]")
    else:
        h.update(repr(value).encode() + b";")


def payload_sha256(checkpoint: Mapping[str, Any]) -> str:
    """sha256 over every entry of a checkpoint dict except the checksum itself."""
    h = hashlib.sha256()
    _digest(h, {k: v for k, v in checkpoint.items() if k != CHECKSUM_KEY})
    return h.hexdigest()


def checkpoint_bytes(checkpoint: dict[str, Any]) -> bytes:
    """The bytes of ``torch.save(checkpoint)`` with its payload checksum added."""
    checkpoint[CHECKSUM_KEY] = payload_sha256(checkpoint)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    return buffer.getvalue()


def _is_zip(path: Path) -> bool:
    """Whether ``path`` starts like the zip archive ``torch.save`` writes."""
    return content_problem(path) is None


def _damaged(path: Path, err: Exception) -> str:
    """The one-line message of a checkpoint that ``torch.load`` cannot read."""
    why = content_problem(path) or f"truncated or overwritten: {short_reason(err)}"
    return f"{path} is damaged ({why}); use the other checkpoint of the run or train again"


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint read with ``weights_only=True`` and its checksum verified (CPU tensors).

    Raises one ``RunDirError`` naming the file when it is missing, unreadable, damaged or holds
    objects other than tensors and plain data.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a checkpoint file" if path.is_dir() else "is missing"
        raise RunDirError(f"{path} {what}; `irrepscope train` writes best.ckpt and last.ckpt at "
                          f"the end of each epoch")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only load failed" not in str(err).lower() or not _is_zip(path):
            raise RunDirError(_damaged(path, err)) from None
        raise RunDirError(
            f"{path} was refused: it holds Python objects other than tensors and plain data, "
            f"and loading those can run code. irrepscope only loads checkpoints written by "
            f"`irrepscope train`; do not load this file unless you know where it came from"
        ) from None
    except Exception as err:  # zip and stream errors of truncated / overwritten files
        raise RunDirError(_damaged(path, err)) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise RunDirError(f"{path} is not a training checkpoint (no state_dict); "
                          f"`irrepscope train` writes best.ckpt and last.ckpt")
    stored = checkpoint.get(CHECKSUM_KEY)
    if stored is not None and stored != payload_sha256(checkpoint):
        raise RunDirError(f"{path} is damaged (checksum mismatch: its contents changed after it "
                          f"was written); use the other checkpoint of the run or train again")
    return checkpoint


def load_run_checkpoint(run_dir: Path, name: str) -> tuple[Path, dict[str, Any]]:
    """(path, checkpoint) of ``run_dir/<name>.ckpt`` (name 'best' or 'last'), or of the other
    one, announced in one line on stderr, when that file is missing or damaged."""
    primary = run_dir / f"{name}.ckpt"
    other = run_dir / ("last.ckpt" if name == "best" else "best.ckpt")
    try:
        return primary, load_checkpoint(primary)
    except RunDirError as err:
        if not other.exists():
            raise
        try:
            checkpoint = load_checkpoint(other)
        except RunDirError as second:
            raise RunDirError(f"{err}; {second}") from None
        print(f"irrepscope: {err}. Using {other.name} (epoch {checkpoint.get('epoch')}) instead",
              file=sys.stderr)
        return other, checkpoint


# --- the epoch commit and its repair ---------------------------------------------------------
def commit_epoch(run_dir: Path, checkpoint: dict[str, Any], improved: bool,
                 rows: list[dict[str, Any]]) -> None:
    """Write last.ckpt (the commit point), best.ckpt when ``improved``, then metrics.csv."""
    data = checkpoint_bytes(checkpoint)
    atomic_write_bytes(run_dir / "last.ckpt", data)
    if improved:
        atomic_write_bytes(run_dir / "best.ckpt", data)
    write_metrics(run_dir / METRICS_FILE, rows)
    write_tracking(run_dir, checkpoint)


def tracking_text(checkpoint: Mapping[str, Any]) -> str | None:
    """CSV text of the irrep tracker's rows in ``checkpoint`` (None: the run tracks nothing)."""
    state = (checkpoint.get("callbacks") or {}).get(TRACKING_KEY)
    if not state:
        return None
    return rows_text(list(state.get("rows") or []), TRACKING_COLUMNS)


def write_tracking(run_dir: Path, checkpoint: Mapping[str, Any]) -> bool:
    """Rewrite ``irreps_over_training.csv`` from ``checkpoint`` when it differs; returns whether
    the file was written."""
    text = tracking_text(checkpoint)
    path = run_dir / TRACKING_FILE
    if text is None or (path.exists() and path.read_text() == text):
        return False
    atomic_write_text(path, text)
    return True


def repair_run_dir(run_dir: Path, source: Path, checkpoint: dict[str, Any]) -> list[str]:
    """Bring best.ckpt and metrics.csv in line with ``checkpoint`` (read from ``source``, the
    checkpoint a resume starts from) and delete stale temporaries; returns what was done."""
    done = []
    stale = remove_stale_temporaries(run_dir)
    if stale:
        done.append(f"removed {len(stale)} temporary file(s) of a killed run")
    record = (checkpoint.get("callbacks") or {}).get(RECORD_KEY) or {}
    rows = record.get("rows")
    metrics = run_dir / METRICS_FILE
    if rows is not None:
        text = metrics_text(rows)
        if not metrics.exists() or metrics.read_text() != text:
            atomic_write_text(metrics, text)
            done.append(f"rewrote {METRICS_FILE} from {source.name} ({len(rows)} epochs)")
    if write_tracking(run_dir, checkpoint):
        done.append(f"rewrote {TRACKING_FILE} from {source.name}")
    best, last = run_dir / "best.ckpt", run_dir / "last.ckpt"
    epoch, best_epoch = checkpoint.get("epoch"), record.get("best_epoch")
    if source.name == "best.ckpt":  # last.ckpt is damaged: the run continues from best
        atomic_write_bytes(last, source.read_bytes())
        done.append(f"replaced last.ckpt by best.ckpt (epoch {epoch}); later epochs are "
                    f"trained again")
    elif source.name == "last.ckpt" and best_epoch is not None and best_epoch == epoch:
        data = source.read_bytes()
        if not best.exists() or best.read_bytes() != data:
            atomic_write_bytes(best, data)
            done.append(f"restored best.ckpt from last.ckpt (epoch {epoch})")
    return done
