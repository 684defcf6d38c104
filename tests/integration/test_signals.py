"""A real SIGTERM / SIGINT sent to `irrepscope train`, `sweep`, `prune` and `demo` running in a
subprocess: exit status 128 + the signal (143 / 130), one line saying where the run stopped and
the command that continues it, nothing half-written, and a resume that ends exactly where an
uninterrupted run ends."""

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


def signal_when(args: list[str], ready: Path, signum: int, cwd: Path) -> tuple[int, list[str]]:
    """Run ``irrepscope ARGS``, send ``signum`` once ``ready`` exists (a first epoch has been
    committed); returns (exit status, irrepscope's stderr lines: progress bars left out)."""
    process = subprocess.Popen([sys.executable, "-m", "irrepscope.cli", *args], cwd=cwd,
                               env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 180
    while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if process.poll() is None:
        process.send_signal(signum)
    try:
        _, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
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


def test_train_stops_with_143_and_resumes_exactly(tiny_settings, tiny_config, tmp_path,
                                                  one_thread):
    config = _config(tiny_settings, tmp_path / "tiny.yaml")
    run = tmp_path / "run"
    status, err = signal_when(["train", "--config", str(config), "--run-dir", str(run)],
                              run / "last.ckpt", signal.SIGTERM, tmp_path)
    assert status == 143, err
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
