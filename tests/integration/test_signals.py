"""A real SIGTERM sent to `irrepscope train`, `sweep`, `prune` and `demo` running in a
subprocess: exit status 143, one line saying where the run stopped and the command that
continues it, nothing half-written, and a resume that ends exactly where an uninterrupted run
ends. `train` runs as under SLURM with Lightning's auto-requeue: SIGUSR1 makes Lightning save
its own checkpoint and call `scontrol requeue` (a stand-in here, which sends the SIGTERM that
SLURM sends to a requeued job)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

import irrepscope
from irrepscope.train.run import train
from irrepscope.train.run_records import load_checkpoint, read_metrics

TIMING = ("epoch_time_s", "train_mol_per_s")
SOURCE = str(Path(irrepscope.__file__).resolve().parents[1])


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SOURCE, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1",
            "PYTHONWARNINGS": "ignore"}


def signal_when(args: list[str], ready: Path, signum: int, cwd: Path,
                env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    """Run ``irrepscope ARGS``, send ``signum`` once ``ready`` exists (a first epoch has been
    committed); returns (exit status, irrepscope's stderr lines: progress bars left out)."""
    process = subprocess.Popen([sys.executable, "-m", "irrepscope.cli", *args], cwd=cwd,
                               env={**_env(), **(env or {})}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # its own group: killed whole if hung
    deadline = time.monotonic() + 180
    while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if process.poll() is None:
        process.send_signal(signum)
    try:
        _, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # with any process it started (DDP)
        raise
    return process.returncode, [line for line in err.splitlines()
                                if line.startswith("irrepscope:")]


def _config(tiny_settings: dict, path: Path, epochs: int = 500) -> Path:
    settings = {**tiny_settings, "train": {**tiny_settings["train"], "max_epochs": epochs}}
    path.write_text(yaml.safe_dump(settings))
    return path


def _no_temporaries(folder: Path) -> None:
    assert not [p for p in folder.rglob(".*") if ".tmp" in p.name], "temporary files left"


def _same_rows(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert {k: v for k, v in x.items() if k not in TIMING} == \
            {k: v for k, v in y.items() if k not in TIMING}


SCONTROL = """#!/bin/sh
echo "scontrol $*" >> "{log}"
kill -TERM $PPID
"""


def _slurm(tmp_path: Path) -> dict[str, str]:
    """The environment of one SLURM task, with a stand-in ``scontrol`` first on PATH."""
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "scontrol").write_text(SCONTROL.format(log=tmp_path / "scontrol.log"))
    (folder / "scontrol").chmod(0o755)
    return {"PATH": f"{folder}{os.pathsep}{os.environ['PATH']}", "SLURM_NTASKS": "1",
            "SLURM_JOB_NAME": "train", "SLURM_JOB_ID": "4242", "SLURM_PROCID": "0",
            "SLURM_LOCALID": "0", "SLURM_NODEID": "0"}


def test_slurm_requeue_stops_train_with_143_and_the_resume_is_exact(tiny_settings, tiny_config,
                                                                    tmp_path, one_thread):
    config = _config(tiny_settings, tmp_path / "tiny.yaml")
    run = tmp_path / "run"
    status, err = signal_when(["train", "--config", str(config), "--run-dir", str(run)],
                              run / "last.ckpt", signal.SIGUSR1, tmp_path, _slurm(tmp_path))
    assert status == 143, err
    assert (tmp_path / "scontrol.log").read_text() == "scontrol requeue 4242\n"
    assert [p.name for p in run.glob("hpc_ckpt_*.ckpt")] == ["hpc_ckpt_1.ckpt"]
    done = len(read_metrics(run / "metrics.csv"))
    assert done >= 1 and load_checkpoint(run / "last.ckpt")["epoch"] == done - 1
    assert err[-1] == (f"irrepscope: stopped by SIGTERM after epoch {done} of 500 in {run} "
                       f"(last.ckpt holds it; the unfinished epoch is trained again); continue "
                       f"with: irrepscope train --config {config} --run-dir {run} --resume")
    assert not (run / "test_metrics.json").exists()
    _no_temporaries(run)
    # continue (with fewer epochs, to be quick): the uninterrupted run's records exactly
    extra = f"train.max_epochs={done + 1}"
    train(tiny_config(extra), run, resume=True)
    assert not list(run.glob("hpc_ckpt_*.ckpt"))  # Lightning's mid-epoch one is not used
    reference = train(tiny_config(extra), tmp_path / "reference")
    _same_rows(read_metrics(run / "metrics.csv"), read_metrics(reference / "metrics.csv"))
    for a, b in zip(load_checkpoint(run / "last.ckpt")["state_dict"].values(),
                    load_checkpoint(reference / "last.ckpt")["state_dict"].values(),
                    strict=True):
        assert torch.equal(a, b)


def test_sweep_stops_before_the_next_config_and_the_table(tiny_settings, tmp_path):
    first, second = (_config(tiny_settings, tmp_path / f"{n}.yaml") for n in ("a", "b"))
    out = tmp_path / "sweep"
    status, err = signal_when(["sweep", str(first), str(second), "--out", str(out)],
                              out / "a" / "last.ckpt", signal.SIGTERM, tmp_path)
    assert status == 143, err
    assert err[-1].startswith("irrepscope: stopped by SIGTERM after epoch ")
    assert err[-1].endswith(f"continue with: irrepscope sweep {first} {second} --out {out}")
    assert not (out / "b").exists() and not (out / "sweep.csv").exists()
    _no_temporaries(out / "a")


def test_prune_stops_during_fine_tuning_and_says_how_to_resume(tiny_run, tmp_path):
    out = tmp_path / "pruned"
    args = ["prune", str(tiny_run), "--out", str(out), "--drop", "2", "--epochs", "500",
            "--speed-batches", "0"]
    status, err = signal_when(args, out / "last.ckpt", signal.SIGTERM, tmp_path)
    assert status == 143, err
    assert "after epoch " in err[-1] and f"of 500 in {out}" in err[-1]
    assert err[-1].endswith(f"continue with: irrepscope {' '.join(args)} --resume")
    assert (out / "pruned_from.json").exists()
    load_checkpoint(out / "last.ckpt")
    _no_temporaries(out)


def test_demo_stops_in_its_first_run(qm9_slice, tmp_path):
    folder, cache = qm9_slice
    out = tmp_path / "demo"
    sets = [f"data.qm9_dir={folder}", f"data.data_dir={cache}", "data.subset=64",
            "model.hidden=4", "model.num_layers=1", "model.sh_backend=e3nn",
            "train.max_epochs=500", "train.batch_size=8", "train.warmup_steps=1",
            "train.progress_bar=false"]
    args = ["demo", "--out", str(out), *[x for s in sets for x in ("--set", s)]]
    status, err = signal_when(args, out / "l012_h16" / "last.ckpt", signal.SIGTERM, tmp_path)
    assert status == 143, err
    assert f"of 500 in {out / 'l012_h16'}" in err[-1]
    assert err[-1].endswith(f"continue with: irrepscope {' '.join(args)}")
    assert not (out / "l03456_h16").exists() and not (out / "compare").exists()


def test_ddp_stops_every_process_together(tiny_settings, tmp_path):
    """SIGTERM to the launching process only: the other process learns of it at the next batch
    end, both stop there (Lightning's own handling hangs here), and only one line is printed."""
    config = _config(tiny_settings, tmp_path / "tiny.yaml")
    run = tmp_path / "ddp"
    args = ["train", "--config", str(config), "--run-dir", str(run), "--devices", "2",
            "--strategy", "ddp", "--accelerator", "cpu"]
    status, err = signal_when(args, run / "last.ckpt", signal.SIGTERM, tmp_path)
    assert status == 143, err
    stopped = [line for line in err if "stopped by" in line]
    assert len(stopped) == 1 and stopped[0].endswith("--accelerator cpu --resume"), err
    assert load_checkpoint(run / "last.ckpt")["epoch"] == len(read_metrics(run / "metrics.csv")) - 1
