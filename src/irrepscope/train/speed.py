"""Measured training and inference throughput of several models, interleaved on the same batches.

Each round times every model in turn (training: forward + backward + AdamW step on the
normalized MSE; inference: forward without gradients, eval mode) over the same fixed batches;
the median round per model is reported, so load from other jobs on the machine hits every model
alike. Training steps run on copies: the models themselves are not changed.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from irrepscope.model.message_cost import model_multiply_adds
from irrepscope.train.module import normalized_error

CPU = torch.device("cpu")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_seconds(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                  batches: Sequence[Any], device: torch.device = CPU) -> float:
    """Wall seconds of one training step per batch (forward, backward, ``optimizer`` step)."""
    model.train()
    _sync(device)
    start = time.perf_counter()
    for batch in batches:
        loss = normalized_error(model, batch).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    _sync(device)
    return time.perf_counter() - start


@torch.no_grad()
def _inference_seconds(model: torch.nn.Module, batches: Sequence[Any],
                       device: torch.device) -> float:
    model.eval()
    _sync(device)
    start = time.perf_counter()
    for batch in batches:
        model(batch)
    _sync(device)
    return time.perf_counter() - start


def throughput(models: Mapping[str, torch.nn.Module], batches: Sequence[Any], rounds: int = 3,
               device: str | torch.device = "cpu") -> dict[str, dict[str, float]]:
    """{name: {"train_mol_per_s", "inference_mol_per_s"}}: molecules over the median round's
    seconds, every model timed in turn on the same ``batches`` (PyG batches), ``rounds`` times
    after one untimed warm-up round."""
    if not batches:
        raise ValueError("throughput() needs at least one batch")
    device = torch.device(device)
    batches = [batch.to(device) for batch in batches]
    molecules = sum(int(batch.num_graphs) for batch in batches)
    copies = {name: copy.deepcopy(model).to(device) for name, model in models.items()}
    optimizers = {name: torch.optim.AdamW(m.parameters(), lr=1e-4) for name, m in copies.items()}
    times: dict[str, dict[str, list[float]]] = {name: {"train": [], "inference": []}
                                                for name in copies}
    for round_index in range(rounds + 1):
        for name, model in copies.items():
            train = train_seconds(model, optimizers[name], batches, device)
            inference = _inference_seconds(model, batches, device)
            if round_index > 0:  # the first round warms caches and allocators up
                times[name]["train"].append(train)
                times[name]["inference"].append(inference)
    return {name: {f"{kind}_mol_per_s": molecules / statistics.median(t[kind])
                   for kind in ("train", "inference")}
            for name, t in times.items()}


def multiply_adds_per_batch(model: torch.nn.Module, batches: Sequence[Any]) -> float:
    """Mean forward multiply-adds of ``model``'s message steps per batch (the cost model's
    count of the formulation each block runs; ``model.message_cost``)."""
    return statistics.mean(model_multiply_adds(model, int(b.edge_index.shape[1]),
                                               int(b.z.shape[0])) for b in batches)
