"""Training steps on bond and radius graphs: per-edge weights vs aggregate-then-weight.

`irrepscope bench train-graphs`: CPU, batch 32 QM9 molecules, the same batches for every build;
a step is forward + backward + AdamW (``irrepscope.bench.train.train_steps``). Builds: *stock*
(e3nn), *fused* (per-edge weights in every block: ``model.aggregate: never``), *new* (the cost
model's choice per block: ``aggregate: auto``, the default) and *aggregate* (aggregate-then-weight
in every block: ``aggregate: always``). Each build trains in its own worker process; its first
step (no warm-up) gives the peak memory, later ones the times, interleaved across builds (median).
Two tables: the five configurations on bonds and on radius graphs (6 Å), and the cutoff scaling
(4, 6, 8 Å) for two configurations. Stock is left out of radius graphs with ``--quick``
(one stock step on a radius graph takes minutes on two cores).
"""

from __future__ import annotations

import statistics
from pathlib import Path

import torch

from irrepscope.bench.record import markdown_table, publish
from irrepscope.bench.train import BATCH_SIZE, CONFIGS, THREADS, StepWorker, configs_option

GRAPHS = [("bonds", 6.0), ("radius", 6.0)]
SCALING_CONFIGS = [([0, 1, 2], 32), ([0, 3, 4, 5, 6], 16)]
SCALING_CUTOFFS = [4.0, 6.0, 8.0]


def measure(orders: list[int], hidden: int, graph: str, cutoff: float, builds: list[str],
            num_batches: int, repeats: int) -> dict:
    """Per build: mol/s (median of interleaved repeats) and first-step peak MiB; edges/atom."""
    workers: dict[str, StepWorker] = {}
    try:
        for name in builds:
            workers[name] = StepWorker(orders, hidden, name, num_batches, {}, warm_up=False,
                                       graph=graph, cutoff=cutoff)
        memory = {name: worker.ask("peak") for name, worker in workers.items()}
        times: dict[str, list[float]] = {name: [] for name in workers}
        for _ in range(repeats):
            for name, worker in workers.items():
                times[name].append(worker.ask("time"))
        degree = next(iter(workers.values())).ask("graph")
    finally:
        for worker in workers.values():
            worker.close()
    return {"L": orders, "h": hidden, "graph": graph, "cutoff": cutoff, "degree": degree,
            "mol_s": {name: BATCH_SIZE / statistics.median(t) for name, t in times.items()},
            "memory": memory}


def _ratio(r: dict, build: str, base: str = "fused") -> str:
    return f"{r['mol_s'][build] / r['mol_s'][base]:.2f}x" if build in r["mol_s"] else "n/a"


def _memory(r: dict, build: str) -> str:
    value = r["memory"].get(build)
    return "n/a" if value is None else f"{value:.0f}"


def graphs_table(results: list[dict]) -> str:
    """Markdown: per config and graph, mol/s and peak MiB of every build, ratios to fused."""
    builds = ["stock", "fused", "new", "aggregate"]
    rows = [[f"{r['L']}", r["h"], r["graph"] if r["graph"] == "bonds" else
             f"radius {r['cutoff']:g} Å", f"{r['degree']:.1f}"]
            + [f"{r['mol_s'][b]:.1f}" if b in r["mol_s"] else "n/a" for b in builds]
            + [_ratio(r, "new"), _ratio(r, "aggregate")]
            + [_memory(r, b) for b in builds]
            + [f"{r['memory']['new'] / r['memory']['fused']:.2f}"
               if r["memory"].get("new") and r["memory"].get("fused") else "n/a"]
            for r in results]
    return markdown_table(
        ["L", "h", "graph", "edges/atom"] + [f"{b} mol/s" for b in builds]
        + ["new / fused", "aggregate / fused"] + [f"{b} peak MiB" for b in builds]
        + ["new / fused memory"], rows)


def scaling_table(results: list[dict]) -> str:
    """Markdown: step time and peak memory against the cutoff, both formulations."""
    rows = [[f"{r['L']}", r["h"], f"{r['cutoff']:g}", f"{r['degree']:.1f}",
             f"{1e3 * BATCH_SIZE / r['mol_s']['fused']:.0f}",
             f"{1e3 * BATCH_SIZE / r['mol_s']['aggregate']:.0f}", _ratio(r, "aggregate"),
             _memory(r, "fused"), _memory(r, "aggregate")] for r in results]
    return markdown_table(["L", "h", "cutoff Å", "edges/atom", "fused ms/step",
                           "aggregate ms/step", "speed-up", "fused peak MiB",
                           "aggregate peak MiB"], rows)


def run(quick: bool = False, record: Path | None = None, configs=None, graphs=None,
        scaling_configs=None, cutoffs=None) -> dict[str, list[dict]]:
    """Measure both tables; print them and record them in ``record`` when given.

    ``configs`` [(orders, h)], ``graphs`` [(kind, cutoff) or kind, at 6 Å], ``scaling_configs``,
    ``cutoffs``: subsets of the defaults (``CONFIGS``, ``GRAPHS``, ``SCALING_CONFIGS``,
    ``SCALING_CUTOFFS``). A run on a subset of configs or graphs is recorded in its own section.
    """
    options = []
    if graphs is not None:
        graphs = [(g, 6.0) if isinstance(g, str) else tuple(g) for g in graphs]
        if graphs != GRAPHS:
            options.append("--graphs " + ",".join(g for g, _ in graphs))
    options.append(configs_option(configs))
    torch.set_num_threads(THREADS)
    num_batches, repeats = (1, 3) if quick else (2, 3)
    configs = [(o, h) for o, h, _ in CONFIGS] if configs is None else configs
    measured = []
    for orders, hidden in configs:
        for graph, cutoff in (GRAPHS if graphs is None else graphs):
            builds = ["fused", "new", "aggregate"]
            if not (quick and graph == "radius"):
                builds.insert(0, "stock")
            measured.append(measure(orders, hidden, graph, cutoff, builds, num_batches, repeats))
            r = measured[-1]
            print(f"L={orders} h={hidden} {graph} {cutoff:g}: " + ", ".join(
                f"{b} {v:.1f} mol/s" for b, v in r["mol_s"].items()), flush=True)
    scaling = []
    for orders, hidden in (SCALING_CONFIGS if scaling_configs is None else scaling_configs):
        for cutoff in (SCALING_CUTOFFS if cutoffs is None else cutoffs):
            scaling.append(measure(orders, hidden, "radius", cutoff, ["fused", "aggregate"],
                                   num_batches, repeats))
            print(f"L={orders} h={hidden} radius {cutoff:g}: {_ratio(scaling[-1], 'aggregate')}",
                  flush=True)
    body = (f"CPU, {THREADS} threads, batch {BATCH_SIZE}, {num_batches} batch(es) x {repeats} "
            f"interleaved repeats (median), each build in its own worker process. Builds: "
            f"stock (e3nn), fused (per-edge weights, `model.aggregate: never`), new (the cost "
            f"model's choice per block, `aggregate: auto`, the default), aggregate "
            f"(aggregate-then-weight in every block, `aggregate: always`). Peak MiB: resident "
            f"memory above the pre-step level during the first training step of a fresh "
            f"process. Edges/atom: mean in-degree of the batches."
            f"{' Stock is not run on radius graphs with --quick.' if quick else ''}\n\n"
            f"{graphs_table(measured)}\n\n"
            f"Cutoff scaling (radius graphs; the model's cutoff equals the graph's):\n\n"
            f"{scaling_table(scaling)}\n")
    options = [option for option in options if option]
    publish(body, record, "train-graphs", quick, options=" ".join(options),
            section="train-graphs (subset)" if options else None)
    return {"graphs": measured, "scaling": scaling}
