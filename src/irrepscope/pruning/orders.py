"""Which orders to prune: a list given by the user, or the rule on the utilization numbers.

The rule (``--auto``): drop every hidden order l > 0 whose ``ablation_rel_mse`` is below the
threshold (default ``AUTO_THRESHOLD`` = 0.5, the reports' "depends on" rule of
``analysis.verdict``). ``ablation_rel_mse`` is (MSE with l zeroed in every block - MSE) / MSE,
the ``ablation`` column of the utilization table: 0.5 means zeroing l costs
less than half the model's own MSE (docs/findings.md: at 0.1 nothing is dropped from models trained
for a few epochs, where every order carries more than a tenth of the error). Zeroing l is exactly
what pruning it from the hidden features does before fine-tuning, so the rule drops the orders
whose removal alone costs little (orders are scored one at a time; the pruned model's error before
fine-tuning shows what dropping them together costs). Order 0 is never dropped.

Where the numbers come from: the run's analysis (``RUN/analysis/summary.json``, written by
`irrepscope analyze`, on at most 128 test molecules) when it has one; otherwise they are
computed here on at most ``AUTO_MOLECULES`` validation molecules (a seeded sample; never on
the test set). The record says which.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from irrepscope.analysis.verdict import prune_threshold
from irrepscope.errors import ConfigError

# The verdict's "depends on" rule, so `prune --auto` drops exactly the orders a report suggests.
AUTO_THRESHOLD = prune_threshold()
AUTO_MOLECULES = 1000
SUMMARY_FILE = Path("analysis") / "summary.json"


def parse_orders(text: str) -> list[int]:
    """'2,1,2' -> [1, 2]: the orders of ``--drop``, sorted, each once (``ConfigError`` for
    anything else)."""
    try:
        orders = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--drop takes comma-separated orders such as 3,4; got {text!r}") \
            from None
    if not orders:
        raise ConfigError(f"--drop takes comma-separated orders such as 3,4; got {text!r}")
    return sorted(set(orders))


def analysis_numbers(run_dir: Path, orders: Sequence[int]) -> dict[int, float] | None:
    """{l: ablation_rel_mse} of the run's analysis (last block) for every l > 0 of ``orders``,
    or None when the run has no analysis or it lacks a number for one of them."""
    path = Path(run_dir) / SUMMARY_FILE
    if not path.exists():
        return None
    summary = json.loads(path.read_text())
    last = summary.get("last_block")
    rows = [row for row in summary.get("table", []) if row.get("block") == last]
    numbers = {int(row["l"]): float(row["ablation_rel_mse"]) for row in rows
               if row.get("ablation_rel_mse") is not None}
    wanted = [l for l in orders if l > 0]
    if not all(l in numbers and math.isfinite(numbers[l]) for l in wanted):
        return None
    return {l: numbers[l] for l in wanted}


def validation_numbers(model: torch.nn.Module, graphs: Sequence[Any], orders: Sequence[int],
                       seed: int, batch_size: int, max_molecules: int = AUTO_MOLECULES,
                       progress: bool = False) -> tuple[dict[int, float], int]:
    """({l: ablation_rel_mse} for every l > 0 of ``orders``, molecules used) over at most
    ``max_molecules`` of ``graphs`` (the validation molecules), drawn with ``seed``."""
    from torch_geometric.loader import DataLoader

    from irrepscope.model.usage import ablation

    pick = np.arange(len(graphs))
    if len(pick) > max_molecules:
        pick = np.sort(np.random.default_rng(seed).choice(len(pick), max_molecules,
                                                          replace=False))
    if not len(pick):
        raise ConfigError("prune --auto: the run has no validation molecules to score the "
                          "orders on; analyse it first (irrepscope analyze) or use --drop")
    loader = DataLoader([graphs[int(i)] for i in pick], batch_size=batch_size, shuffle=False)
    _, relative = ablation(model, loader, [l for l in orders if l > 0], progress=progress)
    return relative, len(pick)


def apply_rule(numbers: dict[int, float], threshold: float) -> list[int]:
    """The orders l > 0 whose ablation_rel_mse is below ``threshold`` (NaN: kept)."""
    return sorted(l for l, value in numbers.items() if l > 0 and value < threshold)


def auto_drop(run_dir: Path, model: torch.nn.Module, val_graphs: Sequence[Any], seed: int,
              batch_size: int, threshold: float = AUTO_THRESHOLD,
              progress: bool = False) -> tuple[list[int], dict[str, Any]]:
    """(orders to drop, the rule's record: threshold, numbers and where they come from)."""
    if not math.isfinite(threshold):
        raise ConfigError(f"--threshold must be a finite number, got {threshold}")
    orders = model.config.feature_orders
    numbers = analysis_numbers(run_dir, orders)
    if numbers is not None:
        source = (f"{SUMMARY_FILE} of the source run (irrepscope analyze; ablation on its test "
                  f"molecules)")
    else:
        numbers, count = validation_numbers(model, val_graphs, orders, seed, batch_size,
                                            progress=progress)
        source = f"computed on {count} validation molecules (the run has no analysis)"
    drop = apply_rule(numbers, threshold)
    rule = {"kind": "auto", "threshold": threshold, "ablation_rel_mse": numbers,
            "numbers_from": source,
            "text": f"drop every order l > 0 with ablation_rel_mse < {threshold:g}"}
    if not drop:
        shown = ", ".join(f"l={l}: {v:.3g}" for l, v in sorted(numbers.items()))
        raise ConfigError(f"prune --auto: no order has ablation_rel_mse below {threshold:g} "
                          f"({shown}; {source}); raise --threshold or choose with --drop")
    return drop, rule
