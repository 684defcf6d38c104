"""The findings campaign at CPU scale: every experiment through the public CLI, in parallel.

Stages (``--stages``, all by default), each trained once per seed (``--seeds N``: seeds 1..N;
the data set and split are the same for every run, ``data.split_seed`` in configs/findings):

- ``orders``: L=[0,1,2,3,4] vs L=[0,3,4,5,6] at h=16 (``irrepscope train``, E epochs each).
- ``prune``: the L=[0,1,2,3,4] run pruned by its own utilization numbers and fine-tuned for
  F = E // 2 epochs (``irrepscope prune RUN --out NEW --auto --epochs F``, after ``irrepscope
  analyze RUN``, so ``--auto`` reads the analysis's ablation numbers, which come from test
  molecules), against the pruned run's config trained from scratch for E + F epochs: the same
  number of molecule passes in total.
- ``dropout``: L=[0,1,2,3,4] with ``model.irrep_dropout`` 0.1 and 0.3 against 0 (the orders runs).
- ``pretrain``: for L=[0,1,2] and L=[0,1,2,3,4], energy from scratch (E epochs) against
  pretraining on dipole + quadrupole (``train.targets``) for P = E // 2 epochs, then fine-tuning
  on energy for E - P epochs with ``--init-from``: the same molecule passes in total.

Every trained run except the pretraining ones is analysed (``irrepscope analyze``) and each stage
is compared (``irrepscope compare``). E comes from configs/findings with the ``--set``
overrides (which apply to every training run). Results: ``OUT/runs/<arm>/seed<S>``, one
comparison per stage in ``OUT/compare/<stage>``, the tables in ``OUT/tables`` and
``OUT/findings_tables.md``, every command in ``OUT/commands.txt``, logs in ``OUT/logs``.
Running the same command again continues an interrupted campaign (finished steps are kept).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from irrepscope.bench.jobs import Job, run_jobs, shown
from irrepscope.errors import ConfigError, IrrepscopeError

STAGES = ("orders", "prune", "dropout", "pretrain")
DROPOUTS = (0.1, 0.3)
PRETRAIN_TARGETS = "{dipole: 1, quadrupole: 1}"
FINETUNE_TARGETS = "{energy: 1}"
BASE = "l01234_h16"  # the model the prune and dropout experiments start from


@dataclass
class Arm:
    """One condition of a stage, trained once per seed: ``runs[seed]`` is its run directory.

    ``before[seed]``: the run this one continues (its training time counts towards this arm's
    total); ``analysed``: whether its utilization numbers are computed.
    """

    stage: str
    key: str
    label: str
    runs: dict[int, Path] = field(default_factory=dict)
    before: dict[int, Path] = field(default_factory=dict)
    analysed: bool = True


class Campaign:
    """The jobs and arms of the selected stages (shared runs are planned once)."""

    def __init__(self, out: Path, config_dir: Path, seeds: Sequence[int],
                 overrides: Sequence[str], prune_threshold: float | None = None) -> None:
        from irrepscope.train.config import load_config

        self.out, self.config_dir = Path(out), Path(config_dir)
        self.seeds, self.overrides = list(seeds), list(overrides)
        self.prune_threshold = prune_threshold
        self.epochs = load_config(self.config(BASE), self.overrides).train.max_epochs
        self.jobs: dict[str, Job] = {}
        self.arms: list[Arm] = []

    def config(self, name: str) -> Path:
        """configs/findings/<name>.yaml (``ConfigError`` when it is missing)."""
        path = self.config_dir / f"{name}.yaml"
        if not path.is_file():
            raise ConfigError(f"findings config {path} is missing; run from the repository root "
                              f"or pass --configs DIR")
        return path

    def _add(self, job: Job) -> str:
        self.jobs.setdefault(job.name, job)
        return job.name

    def run_dir(self, key: str, seed: int) -> Path:
        """Where arm ``key``'s run of ``seed`` trains."""
        return self.out / "runs" / key / f"seed{seed}"

    def train(self, key: str, config: Path, seed: int, extra: Sequence[str] = (),
              deps: Sequence[str] = (), init_from: Path | None = None) -> str:
        """Plan ``irrepscope train`` of ``config`` into arm ``key``'s seed run; its job name."""
        run_dir = self.run_dir(key, seed)
        fixed = ["train", "--config", str(config), "--run-dir", str(run_dir),
                 "--set", f"seed={seed}", *[a for o in self.overrides for a in ("--set", o)],
                 *extra, *(["--init-from", str(init_from)] if init_from else [])]

        return self._add(Job(f"train {key} seed{seed}", partial(_continued, fixed, run_dir),
                             run_dir / "test_metrics.json", tuple(deps)))

    def analyze(self, key: str, seed: int, train_job: str) -> str:
        """Plan ``irrepscope analyze`` of a run."""
        run_dir = self.run_dir(key, seed)
        return self._add(Job(f"analyze {key} seed{seed}", ["analyze", str(run_dir)],
                             run_dir / "analysis" / "summary.json", (train_job,)))

    def arm(self, stage: str, key: str, label: str, config: str, extra: Sequence[str] = (),
            analysed: bool = True) -> Arm:
        """Plan an arm trained from scratch on every seed (and analysed, when ``analysed``)."""
        arm = Arm(stage, key, label, analysed=analysed)
        for seed in self.seeds:
            job = self.train(key, self.config(config), seed, extra)
            if analysed:
                self.analyze(key, seed, job)
            arm.runs[seed] = self.run_dir(key, seed)
        return arm

    def compare(self, stage: str, arms: Sequence[Arm]) -> None:
        """Plan ``irrepscope compare`` of the analysed runs of ``arms``."""
        runs = [(arm.key, seed) for arm in arms if arm.analysed for seed in arm.runs]
        out = self.out / "compare" / stage
        self._add(Job(f"compare {stage}", ["compare", *(str(self.run_dir(k, s)) for k, s in runs),
                                           "--out", str(out)], out / "comparison.json",
                      tuple(f"analyze {k} seed{s}" for k, s in runs)))


def _epochs(count: int) -> str:
    return f"{count} epoch{'' if count == 1 else 's'}"


def _continued(args: list[str], run_dir: Path) -> list[str]:
    """``args`` plus ``--resume`` when ``run_dir`` holds an interrupted run."""
    return [*args, *(["--resume"] if (run_dir / "last.ckpt").exists() else [])]


def plan_orders(c: Campaign) -> list[Arm]:
    """L=[0,1,2,3,4] vs L=[0,3,4,5,6] at h=16."""
    arms = [c.arm("orders", BASE, "L=[0,1,2,3,4]", BASE),
            c.arm("orders", "l03456_h16", "L=[0,3,4,5,6]", "l03456_h16")]
    c.compare("orders", arms)
    return arms


def plan_dropout(c: Campaign) -> list[Arm]:
    """L=[0,1,2,3,4] with irrep dropout 0 (the orders runs), 0.1 and 0.3."""
    arms = [c.arm("dropout", BASE, "irrep_dropout 0", BASE)]  # the orders stage's runs
    arms += [c.arm("dropout", f"{BASE}_drop{p:g}", f"irrep_dropout {p:g}", BASE,
                   ["--set", f"model.irrep_dropout={p}"]) for p in DROPOUTS]
    c.compare("dropout", arms)
    return arms


def plan_prune(c: Campaign) -> list[Arm]:
    """Prune + fine-tune F epochs vs the pruned architecture from scratch for E + F epochs."""
    extra_epochs = max(1, c.epochs // 2)
    threshold = [] if c.prune_threshold is None else ["--threshold", f"{c.prune_threshold:g}"]
    full = c.arm("prune", BASE, f"L=[0,1,2,3,4], {_epochs(c.epochs)}", BASE)
    pruned = Arm("prune", f"{BASE}_pruned", f"pruned, fine-tuned {_epochs(extra_epochs)} "
                 f"(after {c.epochs})")
    scratch = Arm("prune", f"{BASE}_pruned_scratch",
                  f"pruned orders from scratch, {_epochs(c.epochs + extra_epochs)}")
    for seed in c.seeds:
        source, target = c.run_dir(BASE, seed), c.run_dir(pruned.key, seed)
        args = ["prune", str(source), "--out", str(target), "--auto", "--epochs",
                str(extra_epochs), *threshold]
        job = c._add(Job(f"prune {BASE} seed{seed}", partial(_continued, args, target),
                         target / "test_metrics.json", (f"analyze {BASE} seed{seed}",)))
        c.analyze(pruned.key, seed, job)
        pruned.runs[seed], pruned.before[seed] = target, source
        # the pruned run's config: its architecture, data, split and recipe
        train = c.train(scratch.key, target / "config.yaml", seed,
                        ["--set", f"train.max_epochs={c.epochs + extra_epochs}"], (job,))
        c.analyze(scratch.key, seed, train)
        scratch.runs[seed] = c.run_dir(scratch.key, seed)
    arms = [full, pruned, scratch]
    c.compare("prune", arms)
    return arms


def plan_pretrain(c: Campaign) -> list[Arm]:
    """Energy from scratch vs dipole + quadrupole pretraining then energy fine-tuning."""
    if c.epochs < 2:
        raise ConfigError(f"the pretrain stage splits train.max_epochs={c.epochs} into "
                          f"pretraining and fine-tuning; it needs at least 2")
    first = c.epochs // 2
    arms = []
    for config, label in (("l012_h16", "L=[0,1,2]"), (BASE, "L=[0,1,2,3,4]")):
        scratch = c.arm("pretrain", config, f"{label}, energy {_epochs(c.epochs)}", config)
        pre = c.arm("pretrain", f"{config}_pretrain", f"{label}, dipole + quadrupole "
                    f"{_epochs(first)}", config, ["--set", f"train.targets={PRETRAIN_TARGETS}",
                                                "--set", f"train.max_epochs={first}"],
                    analysed=False)
        tuned = Arm("pretrain", f"{config}_finetune",
                    f"{label}, then energy {_epochs(c.epochs - first)}")
        for seed in c.seeds:
            job = c.train(tuned.key, c.config(config), seed,
                          ["--set", f"train.targets={FINETUNE_TARGETS}",
                           "--set", f"train.max_epochs={c.epochs - first}"],
                          (f"train {pre.key} seed{seed}",), init_from=pre.runs[seed])
            c.analyze(tuned.key, seed, job)
            tuned.runs[seed], tuned.before[seed] = c.run_dir(tuned.key, seed), pre.runs[seed]
        c.compare(f"pretrain_{config}", [scratch, tuned])
        arms += [scratch, pre, tuned]
    return arms


PLANS = {"orders": plan_orders, "prune": plan_prune, "dropout": plan_dropout,
         "pretrain": plan_pretrain}


def select_stages(text: str | None) -> list[str]:
    """The stages of ``--stages a,b`` in the order given (None: every stage)."""
    chosen = STAGES if text is None else tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in chosen if s not in STAGES]
    if unknown or not chosen:
        raise ConfigError(f"--stages {text!r}: choose from {', '.join(STAGES)} (comma-separated)")
    return list(chosen)


def plan(out: Path, stages: Sequence[str], seeds: Sequence[int], overrides: Sequence[str],
         config_dir: Path = Path("configs/findings"), prune_threshold: float | None = None
         ) -> Campaign:
    """The campaign of ``stages`` (in ``STAGES`` order)."""
    campaign = Campaign(out, config_dir, seeds, overrides, prune_threshold)
    for stage in STAGES:
        if stage in stages:
            campaign.arms += PLANS[stage](campaign)
    return campaign


def prepare_data(campaign: Campaign) -> None:
    """Build (or check) the processed data cache once, before parallel runs would each build
    it: every findings config shares the data settings of the base config."""
    from irrepscope.data import load_dataset
    from irrepscope.train.config import load_config

    config = load_config(campaign.config(BASE), campaign.overrides)
    load_dataset(**config.data.load_kwargs(), progress=False)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Options of the findings driver (scripts/findings/run.sh)."""
    parser = argparse.ArgumentParser(prog="scripts/findings/run.sh",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/findings"))
    parser.add_argument("-j", "--jobs", type=int, default=1, help="steps run at the same time")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per step")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 1..N for every arm")
    parser.add_argument("--stages", default=None, help=f"comma-separated: {','.join(STAGES)}")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override for every training run")
    parser.add_argument("--configs", type=Path, default=Path("configs/findings"))
    parser.add_argument("--prune-threshold", type=float, default=None,
                        help="prune: --threshold of `irrepscope prune --auto` (default: its own)")
    parser.add_argument("--dry-run", action="store_true", help="list the steps, run nothing")
    args = parser.parse_args(argv)
    for name in ("jobs", "threads", "seeds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    return args


def preview(job: Job) -> str:
    """The job's command line, or what it waits for when that depends on earlier results."""
    try:
        return shown(job.command())
    except IrrepscopeError:
        return f"(completed when it starts, from the results of: {', '.join(job.deps)})"


def run_findings(args: argparse.Namespace) -> int:
    """Plan, run (unless ``dry_run``) and tabulate; returns the exit status (1: a step failed)."""
    from irrepscope.bench.findings_tables import write_tables

    campaign = plan(args.out, select_stages(args.stages), range(1, args.seeds + 1),
                    args.overrides, args.configs, args.prune_threshold)
    if args.dry_run:
        for job in campaign.jobs.values():
            print(f"{job.name}  [after: {', '.join(job.deps) or '-'}]\n    {preview(job)}")
        return 0
    prepare_data(campaign)
    outcome = run_jobs(list(campaign.jobs.values()), campaign.out, args.jobs, args.threads,
                       announce=lambda text: print(f"findings: {text}", file=sys.stderr))
    tables = write_tables(campaign.arms, campaign.out, [outcome.summary()])
    print(f"findings: {outcome.summary()}", file=sys.stderr)
    print(tables)
    return 1 if outcome.failed or outcome.blocked else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of scripts/findings/run.sh; user errors print one line, status 2."""
    args = parse_args(argv)
    try:
        return run_findings(args)
    except IrrepscopeError as err:
        print(f"findings: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
