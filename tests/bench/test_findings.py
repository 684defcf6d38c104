"""The findings driver: its plan, its runner, its tables, and the orders stage end to end."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from irrepscope.bench import findings
from irrepscope.bench.findings import STAGES, Arm, plan, select_stages
from irrepscope.bench.findings_tables import write_tables
from irrepscope.bench.jobs import Job, run_jobs
from irrepscope.errors import ConfigError

REPO_CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "findings"


def _args(job: Job) -> str:
    return " ".join(job.command())


def test_plan_shares_runs_and_keeps_budgets(tmp_path: Path) -> None:
    campaign = plan(tmp_path, STAGES, [1, 2], ["train.max_epochs=4"], REPO_CONFIGS)
    jobs = campaign.jobs
    assert campaign.epochs == 4
    trains = [name for name in jobs if name.startswith("train l01234_h16 ")]
    assert trains == ["train l01234_h16 seed1", "train l01234_h16 seed2"]  # planned once
    prune = jobs["prune l01234_h16 seed1"]
    assert prune.deps == ("analyze l01234_h16 seed1",)
    assert prune.command() == ["prune", str(tmp_path / "runs/l01234_h16/seed1"), "--out",
                               str(tmp_path / "runs/l01234_h16_pruned/seed1"), "--auto",
                               "--epochs", "2"]
    (tmp_path / "runs/l01234_h16_pruned/seed1").mkdir(parents=True)
    (tmp_path / "runs/l01234_h16_pruned/seed1/last.ckpt").write_text("")
    assert prune.command()[-1] == "--resume"  # an interrupted prune is continued
    scratch = jobs["train l01234_h16_pruned_scratch seed2"]
    assert scratch.deps == ("prune l01234_h16 seed2",)
    pre = _args(jobs["train l012_h16_pretrain seed1"])
    assert "train.targets={dipole: 1, quadrupole: 1}" in pre and "train.max_epochs=2" in pre
    tuned = jobs["train l012_h16_finetune seed1"]
    assert tuned.deps == ("train l012_h16_pretrain seed1",)
    assert (f"--init-from {tmp_path / 'runs/l012_h16_pretrain/seed1'}" in _args(tuned)
            and "train.targets={energy: 1}" in _args(tuned) and "max_epochs=2" in _args(tuned))
    stages = [arm.stage for arm in campaign.arms]
    assert [stages.count(s) for s in STAGES] == [2, 3, 3, 6]
    compare = jobs["compare pretrain_l01234_h16"]
    assert compare.deps == ("analyze l01234_h16 seed1", "analyze l01234_h16 seed2",
                            "analyze l01234_h16_finetune seed1",
                            "analyze l01234_h16_finetune seed2")
    longer = plan(tmp_path / "b", STAGES, [1], ["train.max_epochs=6"], REPO_CONFIGS, 0.5).jobs
    assert longer["prune l01234_h16 seed1"].command()[-4:] == ["--epochs", "3", "--threshold",
                                                                "0.5"]
    assert "train.max_epochs=3" in _args(longer["train l01234_h16_finetune seed1"])


def test_scratch_run_takes_the_pruned_config(tmp_path: Path) -> None:
    job = plan(tmp_path, ["prune"], [1], ["train.max_epochs=4"], REPO_CONFIGS).jobs[
        "train l01234_h16_pruned_scratch seed1"]
    pruned = tmp_path / "runs/l01234_h16_pruned/seed1"
    assert job.command() == ["train", "--config", str(pruned / "config.yaml"), "--run-dir",
                             str(tmp_path / "runs/l01234_h16_pruned_scratch/seed1"), "--set",
                             "seed=1", "--set", "train.max_epochs=4", "--set",
                             "train.max_epochs=6"]


def test_stage_selection() -> None:
    assert select_stages(None) == list(STAGES)
    assert select_stages("prune, orders") == ["prune", "orders"]
    with pytest.raises(ConfigError, match="choose from orders, prune, dropout, pretrain"):
        select_stages("orders,typo")


def test_failed_job_blocks_its_dependents(tmp_path: Path) -> None:
    jobs = [Job("bad", ["no-such-command"], tmp_path / "x"),
            Job("after", ["analyze", str(tmp_path)], tmp_path / "y", ("bad",)),
            Job("done", ["analyze", str(tmp_path)], tmp_path / "done")]
    (tmp_path / "done").write_text("")
    outcome = run_jobs(jobs, tmp_path / "out", parallel=2, announce=lambda _: None)
    assert list(outcome.failed) == ["bad"] and outcome.blocked == ["after"]
    assert outcome.already_done == ["done"]
    assert "invalid choice: 'no-such-command'" in Path(outcome.failed["bad"]).read_text()
    assert "1 failed, 1 not started" in outcome.summary()


def _fake_run(run_dir: Path, mse: float, wall: float, shares: dict[int, float]) -> None:
    (run_dir / "analysis").mkdir(parents=True)
    (run_dir / "test_metrics.json").write_text(json.dumps(
        {"test_mse": mse, "test_mae": 0.1, "baseline_test_mse": 1.0, "parameters": 10,
         "wall_time_s": wall, "test_dipole_mae": 0.5, "test_dipole_angle_count": 3,
         "baseline_test_dipole_zero_mae": 0.9}))
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"model": {"orders": sorted(shares)}}))
    table = [{"block": 2, "l": l, "variance_share": v, "ablation_rel_mse": 2 * v,
              "probe_r2_energy": 0.5, "probe_r2_nsps": 0.25} for l, v in shares.items()]
    (run_dir / "analysis" / "summary.json").write_text(json.dumps(
        {"last_block": 2, "table": table}))


def test_tables_mean_and_std_over_seeds(tmp_path: Path) -> None:
    base = Arm("prune", "full", "full", {1: tmp_path / "a1", 2: tmp_path / "a2"})
    tuned = Arm("prune", "tuned", "tuned", {1: tmp_path / "b1", 2: tmp_path / "b2"},
                before={1: tmp_path / "a1", 2: tmp_path / "a2"})
    _fake_run(tmp_path / "a1", 0.2, 100.0, {0: 0.5, 1: 0.5})
    _fake_run(tmp_path / "a2", 0.4, 120.0, {0: 0.7, 1: 0.3})
    _fake_run(tmp_path / "b1", 0.1, 10.0, {0: 1.0})  # b2 did not finish
    (tmp_path / "b1/config.yaml").write_text(yaml.safe_dump(
        {"model": {"orders": [0, 1], "hidden_orders": [0]}}))  # a pruned run
    md = write_tables([base, tuned], tmp_path / "out", ["a note"]).read_text()
    with open(tmp_path / "out/tables/arms.csv") as handle:
        arms = {r["arm"]: r for r in csv.DictReader(handle)}
    assert float(arms["full"]["test_mse_mean"]) == pytest.approx(0.3)
    assert float(arms["full"]["test_mse_std"]) == pytest.approx(0.1414, abs=1e-4)
    assert arms["tuned"]["seeds_finished"] == "1" and arms["tuned"]["seeds_planned"] == "2"
    assert float(arms["tuned"]["wall_time_s_mean"]) == pytest.approx(110.0)  # its own + a1's
    assert float(arms["tuned"]["test_dipole_mae_mean"]) == pytest.approx(0.5)
    with open(tmp_path / "out/tables/utilization.csv") as handle:
        util = list(csv.DictReader(handle))
    full0 = next(r for r in util if r["arm"] == "full" and r["l"] == "0")
    assert float(full0["variance_share_mean"]) == pytest.approx(0.6)
    assert float(full0["ablation_rel_mse_mean"]) == pytest.approx(1.2)
    assert "| full | [0, 1] | 2/2 | 0.3 ± 0.14 | 1 ± 0 | 0.3 ± 0.14 | 0.1 ± 0 | 10 | 110 |" in md
    assert "| tuned | [0, 1] (hidden [0]) | 1/2 | 0.1 |" in md
    assert "- a note" in md
    assert "| arm | baseline_test_dipole_zero_mae | test_dipole_mae |" in md
    assert "test_dipole_angle_count" not in md


@pytest.mark.slow  # five CLI processes: 95 s on a 2-core machine shared with other work
def test_orders_stage_end_to_end(tiny_settings: dict, tmp_path: Path,
                                 capsys: pytest.CaptureFixture) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    for name, orders in (("l012_h16", [0, 1, 2]), ("l01234_h16", [0, 1, 2, 3, 4]),
                         ("l03456_h16", [0, 3, 4, 5, 6])):
        settings = {**tiny_settings, "model": {**tiny_settings["model"], "orders": orders}}
        (configs / f"{name}.yaml").write_text(yaml.safe_dump(settings))
    argv = ["--out", str(tmp_path / "out"), "--stages", "orders", "--seeds", "1", "-j", "2",
            "--configs", str(configs), "--set", "train.max_epochs=1"]
    assert findings.main(argv) == 0
    out = tmp_path / "out"
    commands = (out / "commands.txt").read_text().splitlines()
    assert len(commands) == 5 and all(c.startswith("irrepscope ") for c in commands)
    assert json.loads((out / "runs/l03456_h16/seed1/test_metrics.json").read_text())[
        "epochs_trained"] == 1
    assert (out / "compare/orders/comparison.json").exists()
    with open(out / "tables/utilization.csv") as handle:
        util = [(r["arm"], r["l"]) for r in csv.DictReader(handle)]
    assert util == [("L=[0,1,2,3,4]", str(l)) for l in range(5)] + [
        ("L=[0,3,4,5,6]", str(l)) for l in (0, 3, 4, 5, 6)]
    md = (out / "findings_tables.md").read_text()
    assert "## orders" in md and "| L=[0,3,4,5,6] | [0, 3, 4, 5, 6] | 1/1 |" in md
    assert findings.main(argv) == 0  # a second run finds everything done
    assert (out / "commands.txt").read_text().splitlines() == commands
    assert "0 job(s) run, 5 already done" in capsys.readouterr().err
