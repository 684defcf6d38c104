"""A real full file system: a finished tiny run copied onto a small tmpfs (mounted in a private
user and mount namespace, ``unshare -rm``), the tmpfs filled until half a checkpoint fits, then
`irrepscope train --resume` for one more epoch: one line naming last.ckpt and the space it
needs, exit status 1, the previous last.ckpt and metrics.csv intact, no temporary file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import irrepscope
from irrepscope.train.run_records import load_checkpoint, read_metrics

SOURCE = str(Path(irrepscope.__file__).resolve().parents[1])
SCRIPT = """
set -e
mount -t tmpfs -o size=8m tmpfs "$MNT"
cp -r "$RUN" "$MNT/run"
"$PY" -c "import shutil; free = shutil.disk_usage('$MNT').free
open('$MNT/filler', 'wb').write(bytes(free - $ROOM))"
set +e
"$PY" -m irrepscope.cli train --config "$RUN/config.yaml" --run-dir "$MNT/run" --resume \
    --set train.max_epochs=3 2> "$OUT/err.txt"
echo $? > "$OUT/status"
ls -a "$MNT/run" > "$OUT/listing"
cp "$MNT/run/last.ckpt" "$MNT/run/metrics.csv" "$OUT/"
"""


def _can_mount_tmpfs(folder: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "mount", "-t", "tmpfs", "tmpfs", str(folder)],
                           capture_output=True)
    return probe.returncode == 0


def test_resume_on_a_full_tmpfs(tiny_run, tmp_path):
    mnt, out = tmp_path / "mnt", tmp_path / "out"
    mnt.mkdir()
    out.mkdir()
    if not _can_mount_tmpfs(mnt):
        pytest.skip("cannot mount a tmpfs here (needs `unshare -rm` with user namespaces)")
    checkpoint = (tiny_run / "last.ckpt").stat().st_size
    env = {**os.environ, "PYTHONPATH": SOURCE, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1",
           "PYTHONWARNINGS": "ignore", "MNT": str(mnt), "RUN": str(tiny_run), "OUT": str(out),
           "PY": sys.executable, "ROOM": str(checkpoint // 2)}
    done = subprocess.run(["unshare", "-rm", "bash", "-c", SCRIPT], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    err = [line for line in (out / "err.txt").read_text().splitlines()
           if line.startswith("irrepscope: error")]
    assert (out / "status").read_text().strip() == "1", (out / "err.txt").read_text()[-3000:]
    assert len(err) == 1 and err[0].startswith(
        f"irrepscope: error: no space left on the device for {mnt / 'run' / 'last.ckpt'}: it "
        f"needs "), err
    assert ".tmp" not in (out / "listing").read_text()
    assert load_checkpoint(out / "last.ckpt")["epoch"] == 1  # the finished run's, intact
    assert len(read_metrics(out / "metrics.csv")) == 2
