"""Cost of ``train.track_irreps`` at the demo's settings (``configs/demo``), as a share of an epoch.

For each demo config: the model, its data and split as training builds them; then rounds, each
timing in turn ``STEPS`` training steps (forward, backward, AdamW; ``train.speed``), one pass
over the whole validation split, and one tracking record (``model.usage.usage_rows`` on the
tracker's ``train.track_irreps_molecules`` validation molecules). After one untimed warm-up round,
medians over ``ROUNDS`` rounds. An epoch is estimated as (training steps per epoch) x (median
step) + (median validation pass), which leaves out data loading and checkpointing, so the share
errs high. ``quick``: 2 rounds of 5 steps.
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

import torch

from irrepscope.bench.record import load_average, load_note, markdown_table, publish

STEPS, ROUNDS = 10, 5
QUICK_STEPS, QUICK_ROUNDS = 5, 2


def _batches(dataset: object, indices: object, size: int, count: int | None = None) -> list:
    from torch_geometric.data import Batch

    indices = [int(i) for i in indices][:None if count is None else count * size]
    return [Batch.from_data_list([dataset[i] for i in indices[k:k + size]])
            for k in range(0, len(indices), size)]


def measure(config_path: Path, steps: int, rounds: int) -> dict[str, float]:
    """Median seconds of a training step, a validation pass and a tracking record, and the
    tracking record's share of an estimated epoch."""
    from irrepscope.model.gnn import build_model
    from irrepscope.model.usage import usage_rows
    from irrepscope.train.baseline import composition_baseline
    from irrepscope.train.config import load_config
    from irrepscope.train.datamodule import cached_dataset, split_for
    from irrepscope.train.irrep_tracking import ABLATION_BATCHES, tracking_batches
    from irrepscope.train.speed import train_seconds

    config = load_config(config_path)
    t = config.train
    dataset = cached_dataset(config, progress=False)
    split = split_for(config, len(dataset))
    torch.manual_seed(config.seed)
    model = build_model(config)
    if model.reference.per_element:  # as training does before its first step
        fit, _ = composition_baseline(dataset, split, model.config.num_elements, strict=True)
        model.reference.set_fit(fit)
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.lr)
    train = _batches(dataset, split.train, t.batch_size, steps)
    val = _batches(dataset, split.val, t.eval_batch_size or t.batch_size)
    tracked = tracking_batches(dataset, split.val, t.track_irreps_molecules, config.seed)
    times: dict[str, list[float]] = {"step": [], "validation": [], "record": []}
    for round_index in range(rounds + 1):
        step = train_seconds(model, optimizer, train) / len(train)
        model.eval()
        start = time.perf_counter()
        with torch.no_grad():
            for batch in val:
                model(batch)
        validation = time.perf_counter() - start
        start = time.perf_counter()
        usage_rows(model, tracked, seed=config.seed, ablation_batches=ABLATION_BATCHES)
        record = time.perf_counter() - start
        if round_index:  # the first round warms caches and allocators up
            for key, value in (("step", step), ("validation", validation), ("record", record)):
                times[key].append(value)
    medians = {key: statistics.median(values) for key, values in times.items()}
    steps_per_epoch = math.ceil(len(split.train) / t.batch_size)
    epoch = steps_per_epoch * medians["step"] + medians["validation"]
    return {**medians, "steps_per_epoch": steps_per_epoch, "epoch": epoch,
            "share": medians["record"] / epoch, "molecules": sum(int(b.num_graphs)
                                                                   for b in tracked)}


def run(quick: bool = False, record: Path | None = None) -> str:
    """Measure, print and (with ``record``) write the 'tracking' section; returns the body."""
    from irrepscope.analysis.demo import DEMO_CONFIGS, demo_config_dir

    steps, rounds = (QUICK_STEPS, QUICK_ROUNDS) if quick else (STEPS, ROUNDS)
    start = load_average()
    rows = []
    for name in DEMO_CONFIGS:
        m = measure(demo_config_dir() / f"{name}.yaml", steps, rounds)
        rows.append([name, f"{m['step'] * 1000:.0f}", str(m["steps_per_epoch"]),
                     f"{m['validation']:.1f}", f"{m['epoch']:.0f}", f"{m['molecules']}",
                     f"{m['record']:.2f}", f"{100 * m['share']:.1f} %",
                     "yes" if m["share"] < 0.05 else "no"])
    body = (f"One tracking record (train.track_irreps) against one epoch of the demo configs, "
            f"on {torch.get_num_threads()} torch thread(s): medians of {rounds} interleaved "
            f"rounds of {steps} training steps, one validation pass and one record, after a "
            f"warm-up round; epoch = steps per epoch x step + validation pass. "
            f"{load_note(start, load_average())}\n\n"
            + markdown_table(["config", "training step (ms)", "steps / epoch",
                              "validation pass (s)", "epoch (s)", "tracked molecules",
                              "record (s)", "record / epoch", "< 5 %"], rows))
    publish(body, record, "tracking", quick)
    return body
