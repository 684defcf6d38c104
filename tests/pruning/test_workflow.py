"""`irrepscope prune` on the tiny QM9 run: run directories, records, reports and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from torch_geometric.loader import DataLoader

from irrepscope.analysis.utilization import ablation
from irrepscope.cli import main
from irrepscope.errors import ConfigError, RunDirError
from irrepscope.model.info import model_info
from irrepscope.pruning import prune_run
from irrepscope.pruning.orders import AUTO_THRESHOLD
from irrepscope.pruning.report import PRUNED_FROM_FILE, REPORT_FILE
from irrepscope.train.run import (
    load_run_dataset,
    load_run_split,
    load_trained_model,
    read_run_config,
    read_test_metrics,
)
from irrepscope.train.run_records import read_metrics

FEW = dict(speed_batches=1)  # one timed batch: the tests check the plumbing, not the speed


def _test_graphs(run: Path) -> list:
    dataset, split = load_run_dataset(run, progress=False), load_run_split(run)
    return [dataset[int(i)] for i in split.test]


def test_zero_epochs_writes_a_run_whose_model_is_the_ablated_original(tiny_run, tmp_path):
    out = prune_run(tiny_run, tmp_path / "pruned", drop=[2], epochs=0, **FEW)
    for name in ("config.yaml", "split.npz", "best.ckpt", "last.ckpt", "metrics.csv",
                 "baseline.json", "test_metrics.json", "versions.json", PRUNED_FROM_FILE,
                 REPORT_FILE):
        assert (out / name).exists(), name
    config = read_run_config(out)
    assert (config.model.orders, config.model.hidden_orders) == ([0, 1, 2], [0, 1])
    model, _ = load_trained_model(out)
    assert sum(p.numel() for p in model.parameters()) == model_info(config)["parameters"]
    original, _ = load_trained_model(tiny_run)
    loader = DataLoader(_test_graphs(tiny_run), batch_size=64)
    mse, relative = ablation(original, loader, [2], progress=False)
    record = json.loads((out / PRUNED_FROM_FILE).read_text())
    assert record["errors"]["original"]["test_mse"] == pytest.approx(mse, rel=1e-6)
    assert record["errors"]["pruned"]["test_mse"] == pytest.approx(mse * (1 + relative[2]),
                                                                  rel=1e-5)
    metrics = read_test_metrics(out)
    assert metrics["epochs_trained"] == 0 and read_metrics(out / "metrics.csv") == []
    assert metrics["test_mse"] == record["errors"]["pruned"]["test_mse"]
    assert metrics["baseline_test_mse"] == read_test_metrics(tiny_run)["baseline_test_mse"]
    sizes = record["models"]
    assert sizes["pruned"]["parameters"] < sizes["original"]["parameters"]
    assert sizes["pruned"]["multiply_adds_per_batch"] < sizes["original"][
        "multiply_adds_per_batch"]
    assert all(sizes[m][k] > 0 for m in sizes for k in ("train_mol_per_s",
                                                         "inference_mol_per_s"))
    report = (out / REPORT_FILE).read_text()
    assert report.index("## Verdict") < report.index("Source:")  # the verdict comes first
    removed = sizes["original"]["parameters"] - sizes["pruned"]["parameters"]
    assert f"Pruned l=2 from {record['source_run']}: {removed:,} of " in report
    assert "pruned, before fine-tuning" in report and "composition baseline" in report
    assert "after" not in report.split("| model")[1].split("Test errors")[0]  # no epochs
    assert record["unused_sh_orders"] == []
    assert f"irrepscope train --config {out}/config.yaml --set train.max_epochs=2" in report


def test_fine_tuning_starts_from_the_pruned_weights_and_resumes(tiny_run, tmp_path):
    out = tmp_path / "pruned"
    # a learning rate of 1e-12 leaves the weights as they were: after == before
    options = dict(drop=[1], drop_sh=True, overrides=["train.lr=1e-12"], **FEW)
    prune_run(tiny_run, out, epochs=1, **options)
    record = json.loads((out / PRUNED_FROM_FILE).read_text())
    config = read_run_config(out)
    assert (config.model.orders, config.model.hidden_orders) == ([0, 2], None)
    assert config.train.lr == 1e-12 and config.train.max_epochs == 1
    errors = record["errors"]
    assert set(errors) == {"original", "pruned", "hidden_only", "fine_tuned"}
    assert errors["fine_tuned"]["test_mse"] == pytest.approx(errors["pruned"]["test_mse"],
                                                             rel=1e-4)
    assert len(read_metrics(out / "metrics.csv")) == 1
    assert (out / "split.npz").read_bytes() == (tiny_run / "split.npz").read_bytes()
    report = (out / REPORT_FILE).read_text()
    assert "hidden features pruned only (= ablation)" in report
    assert "after 1 epoch(s) of fine-tuning" in report
    with pytest.raises(RunDirError, match="already holds a run"):
        prune_run(tiny_run, out, epochs=1, **options)
    prune_run(tiny_run, out, epochs=2, resume=True, **options)
    assert len(read_metrics(out / "metrics.csv")) == 2
    assert json.loads((out / PRUNED_FROM_FILE).read_text())["epochs_trained"] == 2


def test_auto_reads_the_analysis_numbers_when_the_run_has_them(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "analysis").mkdir(exist_ok=True)
    rows = [{"block": 2, "l": l, "ablation_rel_mse": v} for l, v in ((0, 9.0), (1, 0.02),
                                                                      (2, 3.0))]
    (run / "analysis" / "summary.json").write_text(json.dumps({"last_block": 2, "table": rows}))
    out = prune_run(run, tmp_path / "pruned", auto=True, epochs=0, **FEW)
    record = json.loads((out / PRUNED_FROM_FILE).read_text())
    assert record["dropped_orders"] == [1]
    assert "analysis/summary.json" in record["rule"]["numbers_from"]
    assert record["rule"]["threshold"] == AUTO_THRESHOLD == 0.5


def test_auto_scores_the_orders_on_validation_molecules_without_an_analysis(tiny_run,
                                                                              tmp_path):
    out = prune_run(tiny_run, tmp_path / "pruned", auto=True, threshold=1e9, epochs=0, **FEW)
    record = json.loads((out / PRUNED_FROM_FILE).read_text())
    assert record["dropped_orders"] == [1, 2]
    assert record["unused_sh_orders"] == [1, 2]  # scalar features: no path reads l > 0
    assert "feed no path of the pruned model" in (out / REPORT_FILE).read_text()
    assert "validation molecules" in record["rule"]["numbers_from"]
    assert set(record["rule"]["ablation_rel_mse"]) == {"1", "2"}
    with pytest.raises(ConfigError, match="no order has ablation_rel_mse below -1e"):
        prune_run(tiny_run, tmp_path / "none", auto=True, threshold=-1e9, epochs=0, **FEW)


@pytest.mark.parametrize(("options", "error", "message"), [
    ({"drop": [0]}, ConfigError, "order 0 cannot be dropped: the readout"),
    ({"drop": [3]}, ConfigError, r"order\(s\) \[3\] are not in the run's hidden orders"),
    ({"drop": [1], "overrides": ["model.hidden=8"]}, ConfigError,
     "prune --set cannot change model.hidden"),
    ({"drop": [1], "epochs": -1}, ConfigError, "--epochs must be an integer >= 0"),
    ({"drop": [1], "auto": True}, ConfigError, "--drop L,L or with --auto"),
    ({"drop": [1], "overrides": ["train.devices=2"]}, ConfigError,
     "prune fine-tunes in one process"),
    ({"drop": [1], "epochs": 1, "overrides": ["train.lr_schedule=warmup_cosine",
                                              "train.warmup_steps=7"]}, ConfigError,
     r"warmup_steps=7 is not shorter than the fine-tuning \(1 epoch\(s\) x 7 batches"),
    ({"auto": True, "epochs": 1, "overrides": ["train.warmup_steps=7"]}, ConfigError,
     "warmup_steps=7 is not shorter"),  # before the orders are scored
])
def test_bad_input_raises_one_clear_message(tiny_run, tmp_path, options, error, message):
    options = {"epochs": 0, **options}
    with pytest.raises(error, match=message):
        prune_run(tiny_run, tmp_path / "pruned", **options, **FEW)
    assert not (tmp_path / "pruned").exists()  # nothing written


def test_speed_batches_zero_leaves_the_timing_out(tiny_run, tmp_path):
    out = prune_run(tiny_run, tmp_path / "pruned", drop=[1], epochs=0, speed_batches=0)
    record = json.loads((out / PRUNED_FROM_FILE).read_text())
    assert record["speed"] is None and "train_mol_per_s" not in record["models"]["pruned"]
    assert record["models"]["pruned"]["multiply_adds_per_batch"] > 0
    assert "Molecules/s: not measured" in (out / REPORT_FILE).read_text()


def test_a_run_without_a_finished_checkpoint_is_refused(tiny_run, tmp_path):
    run = tmp_path / "unfinished"
    run.mkdir()
    shutil.copyfile(tiny_run / "config.yaml", run / "config.yaml")
    with pytest.raises(RunDirError, match="has no finished checkpoint"):
        prune_run(run, tmp_path / "pruned", drop=[1], epochs=0)


def test_cli_prunes_and_reports_errors_in_one_line(tiny_run, tmp_path, capsys):
    out = tmp_path / "pruned"
    assert main(["prune", str(tiny_run), "--out", str(out), "--drop", "2", "--epochs", "0"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out)
    assert "test MSE original " in captured.err and "pruned before fine-tuning " in captured.err
    assert "composition baseline (element counts, least squares) " in captured.err
    record = json.loads((out / PRUNED_FROM_FILE).read_text())
    assert record["command"].startswith("irrepscope prune ") and "--drop 2" in record["command"]
    assert main(["prune", str(tiny_run), "--out", str(tmp_path / "x"), "--drop", "0,1",
                 "--epochs", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("irrepscope: error: prune: order 0 cannot be dropped") and \
        "\n" not in err
    assert main(["prune", str(tiny_run), "--out", str(tmp_path / "y"), "--drop", "a",
                 "--epochs", "0"]) == 2
    assert "--drop takes comma-separated orders" in capsys.readouterr().err


def test_speed_measures_every_model_on_the_same_batches(tiny_run):
    from torch_geometric.data import Batch

    from irrepscope.model.prune import prune_model
    from irrepscope.train.speed import multiply_adds_per_batch, throughput

    model, _ = load_trained_model(tiny_run)
    batches = [Batch.from_data_list(_test_graphs(tiny_run)[:4])]
    pruned = prune_model(model, [2])
    before = [p.detach().clone() for p in model.parameters()]
    speed = throughput({"original": model, "pruned": pruned}, batches, rounds=1)
    assert set(speed) == {"original", "pruned"}
    assert all(v > 0 for s in speed.values() for v in s.values())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert multiply_adds_per_batch(pruned, batches) < multiply_adds_per_batch(model, batches)
