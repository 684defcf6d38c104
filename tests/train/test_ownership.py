"""`train --run-dir` and `prune --out` into folders holding files that are not theirs: refused
in one line naming the files, unless the folder is the same run (resume, or a restart before
its first epoch) or --overwrite is given (run files only are deleted)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from irrepscope.cli import main
from irrepscope.pruning.report import PRUNED_FROM_FILE, REPORT_FILE
from irrepscope.train.ownership import RUN_FILES, run_files
from irrepscope.train.run_records import load_checkpoint

USER_FILES = {"best.ckpt": b"my best model", "metrics.csv": b"epoch,loss\n0,1.0\n",
              "split.npz": b"my split", "notes.txt": b"not a run file"}


def _user_folder(folder: Path, names=USER_FILES) -> Path:
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).write_bytes(USER_FILES[name])
    return folder


def _config(tiny_settings: dict, folder: Path, **model) -> Path:
    settings = {**tiny_settings, "model": {**tiny_settings["model"], **model},
                "train": {**tiny_settings["train"], "max_epochs": 1}}
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def _error(capsys) -> str:
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("irrepscope: error")]
    assert len(lines) == 1, lines
    return lines[0]


def test_train_refuses_a_folder_of_someone_elses_run_files(tiny_settings, tmp_path, capsys):
    config = _config(tiny_settings, tmp_path)
    run = _user_folder(tmp_path / "run")
    assert main(["train", "--config", str(config), "--run-dir", str(run)]) == 2
    error = _error(capsys)
    assert f"{run} holds split.npz, metrics.csv, best.ckpt but no readable config.yaml" in error
    assert "--overwrite" in error
    assert all((run / n).read_bytes() == data for n, data in USER_FILES.items())


def test_train_refuses_a_run_of_another_config_then_overwrites_it(tiny_settings, tmp_path,
                                                                  capsys, one_thread):
    run = tmp_path / "run"
    first = _config(tiny_settings, tmp_path)
    assert main(["train", "--config", str(first), "--run-dir", str(run)]) == 0
    (run / "last.ckpt").unlink()  # even without last.ckpt: a finished run of another config
    (run / "notes.txt").write_text("mine")
    (tmp_path / "other").mkdir()
    other = _config(tiny_settings, tmp_path / "other", hidden=5)
    capsys.readouterr()
    assert main(["train", "--config", str(other), "--run-dir", str(run)]) == 2
    error = _error(capsys)
    assert f"{run} holds a run of a different config (model.hidden differ; files: " \
           f"config.yaml, split.npz, metrics.csv, best.ckpt" in error
    assert main(["train", "--config", str(other), "--run-dir", str(run), "--overwrite",
                 "--resume"]) == 2
    assert "give one of them" in _error(capsys)
    assert main(["train", "--config", str(other), "--run-dir", str(run), "--overwrite"]) == 0
    assert load_checkpoint(run / "last.ckpt")["hyper_parameters"]["config"]["model"][
        "hidden"] == 5
    assert (run / "notes.txt").read_text() == "mine" and (run / "test_metrics.json").exists()


def test_a_run_stopped_before_its_first_epoch_starts_over_and_cannot_resume(
        tiny_settings, tmp_path, capsys, one_thread):
    config = _config(tiny_settings, tmp_path)
    run = tmp_path / "run"
    assert main(["train", "--config", str(config), "--run-dir", str(run)]) == 0
    for name in ("last.ckpt", "best.ckpt", "metrics.csv", "test_metrics.json"):
        (run / name).unlink()  # as a stop before the first epoch leaves it
    capsys.readouterr()
    assert main(["train", "--config", str(config), "--run-dir", str(run), "--resume"]) == 2
    assert _error(capsys).endswith(f"cannot resume: {run / 'last.ckpt'} is missing: the run "
                                   f"there stopped before its first epoch finished; run the "
                                   f"same command without --resume to start it")
    assert main(["train", "--config", str(config), "--run-dir", str(run)]) == 0


def test_prune_refuses_an_out_folder_of_someone_elses_files(tiny_run, tmp_path, capsys):
    out = _user_folder(tmp_path / "pruned", ["metrics.csv", "notes.txt"])
    (out / "config.yaml").write_text("{}\n")
    args = ["prune", str(tiny_run), "--out", str(out), "--drop", "2,2", "--epochs", "0",
            "--speed-batches", "0"]
    assert main(args) == 2
    assert f"{out} holds config.yaml, metrics.csv, not from a prune of {tiny_run}" in \
        _error(capsys)
    assert (out / "metrics.csv").read_bytes() == USER_FILES["metrics.csv"]
    assert main([*args, "--overwrite"]) == 0
    assert (out / "notes.txt").read_bytes() == USER_FILES["notes.txt"]
    assert json.loads((out / PRUNED_FROM_FILE).read_text())["dropped_orders"] == [2]


def test_prune_records_the_checkpoint_it_loaded(tiny_run, tmp_path, capsys):
    source = tmp_path / "source"
    shutil.copytree(tiny_run, source)
    (source / "best.ckpt").unlink()
    out = tmp_path / "pruned"
    assert main(["prune", str(source), "--out", str(out), "--drop", "2", "--epochs", "0",
                 "--speed-batches", "0"]) == 0
    assert "best.ckpt is missing" in capsys.readouterr().err
    record = json.loads((out / PRUNED_FROM_FILE).read_text())
    assert record["source_checkpoint"] == "last"
    assert f"Source: {source.resolve()} (last checkpoint)." in (out / REPORT_FILE).read_text()


def test_run_files_are_what_the_commands_write(tiny_run):
    assert set(run_files(tiny_run)) <= set(RUN_FILES)
    assert {p.name for p in tiny_run.iterdir() if not p.name.startswith(".")} <= set(RUN_FILES)
