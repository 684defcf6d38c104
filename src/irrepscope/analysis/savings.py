"""What dropping orders from an irrepscope model would remove: parameters and message-step
multiply-adds, counted on the pruned model that ``model.prune`` would build (not estimated)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from irrepscope.model.config import ModelConfig
from irrepscope.model.gnn import build_model
from irrepscope.model.message_cost import model_multiply_adds
from irrepscope.model.prune import pruned_config


def prune_savings(config: ModelConfig, drop: Sequence[int], graphs: Sequence[Any],
                  targets: Sequence[str] = ("energy",)) -> dict[str, Any]:
    """{"drop", "parameters_before/after", "macs_per_molecule_before/after", "molecules"} of
    dropping ``drop`` from the hidden features of ``config``'s model; multiply-adds are the
    forward message steps' (``model.message_cost``) for all of ``graphs`` at once (their
    edges and atoms), per molecule."""
    edges = sum(int(g.edge_index.shape[1]) for g in graphs)
    atoms = sum(int(g.z.shape[0]) for g in graphs)
    out: dict[str, Any] = {"drop": sorted(int(l) for l in drop), "molecules": len(graphs)}
    state = torch.random.get_rng_state()  # building draws initial weights; leave no trace
    try:
        for when, model_config in (("before", config), ("after", pruned_config(config, drop))):
            model = build_model(model_config, targets=list(targets))
            out[f"parameters_{when}"] = sum(p.numel() for p in model.parameters())
            out[f"macs_per_molecule_{when}"] = (model_multiply_adds(model, edges, atoms)
                                                / max(len(graphs), 1))
    finally:
        torch.random.set_rng_state(state)
    return out


def add_prune_candidate(summary: dict[str, Any], table: Sequence[Mapping[str, Any]], run: Any,
                        molecules: int) -> None:
    """Put into an analysis summary the ablation's molecule count and, when the verdict finds
    pruning candidates, what dropping them removes (``prune_candidate``);
    ``run``: the ``TrainedRun`` (its config and test graphs)."""
    from irrepscope.analysis.verdict import model_rows, prune_candidates

    summary["ablation_molecules"] = molecules
    drop = prune_candidates(model_rows(summary, table))
    if drop:
        summary["prune_candidate"] = prune_savings(run.config.model, drop, run.test_graphs,
                                                   list(run.config.train.targets))
