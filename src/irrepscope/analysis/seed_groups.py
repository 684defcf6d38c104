"""Runs of one config at several seeds, grouped for ``irrepscope compare``.

Two runs belong to the same group when their config.yaml files agree in everything except
``seed``, ``data.split_seed`` and how a run executes (``train.config.RESUMABLE_KEYS`` other than
``train.max_epochs``). A run without config.yaml, or whose seed is already in the group, forms
its own group. Each group gets mean ± std over its seeds (test errors, per-l utilization of the
last block), and each group is compared with the first by a paired t-test on test MSE
(``train.seed_stats``) over the seeds both have, on the same split.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from irrepscope.train.config import RESUMABLE_KEYS, RunConfig, config_differences
from irrepscope.train.seed_stats import (
    ALPHA,
    PairedTest,
    format_mean_std,
    format_per_seed,
    paired_t_test,
)
from irrepscope.train.seeds import strip_seed_suffix

_IGNORED = frozenset({"seed", "data.split_seed"} | (RESUMABLE_KEYS - {"train.max_epochs"}))
UTILIZATION_COLUMNS = ("variance_share", "probe_r2_energy", "probe_r2_nsps", "ablation_rel_mse",
                       "grad_x_input_share")
SEEDS_EXPLAINED = (
    "Runs whose configs differ only in the seed (initial weights and data order) are one config; "
    "± is the sample standard deviation over its seeds (ddof=1). 'split' says whether every seed "
    "trained on the same train/val/test split (then the composition baseline is the same for "
    "all and is shown once).")
TEST_EXPLAINED = (
    f"Each config is compared with the first one by a paired t-test on test MSE over the seeds "
    f"both were trained with on the same split (difference per seed, t = mean / (std / √n), "
    f"n − 1 degrees of freedom, two-sided p). 'Exceeds seed spread' means p < {ALPHA:g}; with "
    f"fewer than 2 paired seeds it cannot be decided. Several comparisons are not corrected "
    f"for multiple testing.")


@dataclass
class SeedGroup:
    """The runs of one config: run names, analysis summaries, seeds and split seeds."""

    config: RunConfig | None
    names: list[str] = field(default_factory=list)
    summaries: list[dict[str, Any]] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    split_seeds: list[int | None] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The config's name: the runs' common ``<stem>`` of ``<stem>_s<seed>``, else the first
        run's name."""
        stems = {strip_seed_suffix(n) for n in self.names}
        common = {stem for stem, seed in stems if seed is not None}
        if len(self.names) > 1 and len(common) == 1 and all(s is not None for _, s in stems):
            return common.pop()
        extra = len(self.names) - 1
        return f"{self.names[0]} (+{extra})" if extra else self.names[0]

    def values(self, key: str) -> dict[int, float]:
        """{seed: summary[key]} over the group's runs (NaN where missing)."""
        return {seed: _number(s.get(key)) for seed, s in zip(self.seeds, self.summaries,
                                                              strict=True)}

    def split_text(self) -> str:
        """'fixed (split seed S)', 'one per seed' or 'unknown' (runs without config.yaml)."""
        if None in self.split_seeds:
            return "unknown"
        distinct = set(self.split_seeds)
        return f"fixed (split seed {distinct.pop()})" if len(distinct) == 1 else "one per seed"


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def read_config_or_none(run_dir: Path) -> RunConfig | None:
    """The run's config.yaml, or None when it has none (features files, hand-made folders)."""
    from irrepscope.train.run import CONFIG_FILE, read_run_config

    return read_run_config(run_dir) if (Path(run_dir) / CONFIG_FILE).exists() else None


def group_runs(names: Sequence[str], summaries: Sequence[dict[str, Any]],
               configs: Sequence[RunConfig | None]) -> list[SeedGroup]:
    """Runs of the same config (up to seed) together, in the order configs first appear."""
    groups: list[SeedGroup] = []
    for name, summary, config in zip(names, summaries, configs, strict=True):
        seed = int(config.seed if config is not None else summary.get("seed", 0))
        group = next((g for g in groups if config is not None and g.config is not None
                      and seed not in g.seeds and _same_config(g.config, config)), None)
        if group is None:
            group = SeedGroup(config)
            groups.append(group)
        group.names.append(name)
        group.summaries.append(summary)
        group.seeds.append(seed)
        group.split_seeds.append(None if config is None else config.split_seed)
    return groups


def _same_config(a: RunConfig, b: RunConfig) -> bool:
    return not set(config_differences(a, b)) - _IGNORED


def compare_groups(a: SeedGroup, b: SeedGroup, key: str = "test_mse") -> tuple[PairedTest, int]:
    """(paired t-test of ``a`` - ``b`` on ``key``, number of shared seeds left out because the
    two runs of that seed used different splits)."""
    split_a = dict(zip(a.seeds, a.split_seeds, strict=True))
    split_b = dict(zip(b.seeds, b.split_seeds, strict=True))
    shared = set(a.seeds) & set(b.seeds)
    kept = {s for s in shared if split_a[s] == split_b[s]}
    values_a, values_b = a.values(key), b.values(key)
    test = paired_t_test({s: values_a[s] for s in kept}, {s: values_b[s] for s in kept})
    return test, len(shared) - len(kept)


def significance_statements(groups: Sequence[SeedGroup]) -> list[str]:
    """One sentence per config after the first: its test MSE against the first's."""
    out = []
    for group in groups[1:]:
        test, left_out = compare_groups(groups[0], group)
        text = test.statement(groups[0].name, group.name)
        if left_out:
            text += (f" {left_out} shared seed(s) left out: the two runs of that seed used "
                     f"different splits.")
        out.append(text)
    return out


def _error_row(group: SeedGroup) -> list[str]:
    mse = group.values("test_mse")
    bases = list(group.values("baseline_test_mse").values())
    shown_base = bases[:1] if group.split_text().startswith("fixed") else bases
    ratios = [m / b if b > 0 else math.nan for m, b in zip(mse.values(), bases, strict=True)]
    return [group.name, str(len(group.seeds)), " ".join(map(str, group.seeds)),
            group.split_text(), format_mean_std(list(mse.values())), format_per_seed(mse),
            format_mean_std(list(group.values("test_mae").values())),
            format_mean_std(shown_base), format_mean_std(ratios)]


def _utilization_rows(group: SeedGroup) -> list[list[str]]:
    rows: dict[int, list[dict[str, Any]]] = {}
    for summary in group.summaries:
        for row in summary.get("table", []):
            if row["block"] == summary["last_block"]:
                rows.setdefault(int(row["l"]), []).append(row)
    return [[group.name, str(l), *[format_mean_std([_number(r.get(c)) for r in per_seed])
                                   for c in UTILIZATION_COLUMNS]]
            for l, per_seed in sorted(rows.items())]


def seed_blocks(groups: Sequence[SeedGroup]) -> list[tuple[Any, ...]]:
    """Report blocks (``analysis.report``): errors and utilization over seeds, and the paired
    tests; empty when every config has one run and there is only one config."""
    seeded = any(len(g.seeds) > 1 for g in groups)
    blocks: list[tuple[Any, ...]] = []
    if seeded:
        blocks += [
            ("h2", "Test error over seeds (mean ± std)"),
            ("table", ["config", "runs", "seeds", "split", "test MSE (eV²)",
                       "test MSE per seed (eV²)", "test MAE (eV)", "baseline test MSE (eV²)",
                       "MSE / baseline"], [_error_row(g) for g in groups]),
            ("p", SEEDS_EXPLAINED),
            ("h2", "Utilization per l over seeds (last block, mean ± std)"),
            ("table", ["config", "l", *UTILIZATION_COLUMNS],
             [row for g in groups for row in _utilization_rows(g)]),
        ]
    if len(groups) > 1:
        blocks += [("h2", "Is the test MSE difference larger than the seed spread?"),
                   ("ul", significance_statements(groups)), ("p", TEST_EXPLAINED)]
    return blocks


def seed_groups_json(groups: Sequence[SeedGroup]) -> list[dict[str, Any]]:
    """Plain data of the groups for comparison.json (per-seed test MSE, test against the
    first group)."""
    out = []
    for i, group in enumerate(groups):
        entry: dict[str, Any] = {"name": group.name, "runs": group.names, "seeds": group.seeds,
                                 "split": group.split_text(),
                                 "test_mse": {str(k): v for k, v in
                                              group.values("test_mse").items()}}
        if i:
            test, left_out = compare_groups(groups[0], group)
            entry["paired_t_test_vs_first"] = {
                "seeds": list(test.seeds), "mean_difference": test.mean, "std_difference":
                test.std, "t": test.t, "df": test.df, "p": test.p, "alpha": test.alpha,
                "verdict": test.verdict, "left_out_different_split": left_out}
        out.append(entry)
    return out
