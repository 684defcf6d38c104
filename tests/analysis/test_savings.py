"""What a suggested pruning removes: counted on the model that `irrepscope prune` builds."""

from __future__ import annotations

import torch
from torch_geometric.data import Batch

from irrepscope.analysis.savings import prune_savings
from irrepscope.model.message_cost import model_multiply_adds
from irrepscope.model.prune import prune_model


def test_savings_are_the_pruned_models_counts(tiny_model, molecules) -> None:
    state = torch.random.get_rng_state()
    savings = prune_savings(tiny_model.config, [2], molecules)
    assert torch.equal(state, torch.random.get_rng_state())  # building left no trace
    pruned = prune_model(tiny_model, [2])
    batch = Batch.from_data_list(molecules)
    edges, atoms = int(batch.edge_index.shape[1]), int(batch.z.shape[0])
    n = len(molecules)
    assert savings["drop"] == [2] and savings["molecules"] == n
    assert savings["parameters_before"] == sum(p.numel() for p in tiny_model.parameters())
    assert savings["parameters_after"] == sum(p.numel() for p in pruned.parameters())
    assert savings["macs_per_molecule_before"] == model_multiply_adds(tiny_model, edges, atoms) / n
    assert savings["macs_per_molecule_after"] == model_multiply_adds(pruned, edges, atoms) / n
    assert savings["parameters_after"] < savings["parameters_before"]
