"""How much a trained model uses each order l: numbers behind the paper's visual reading.

Per l: variance share of the graph embedding; cross-validated ridge-probe R^2 of a target from
l's invariant features; neighbourhood consistency of NSPS in l's projection (1 = no structure,
0 = neighbours have identical NSPS); ablation (relative change of test MSE when l is zeroed
inside every block); input-gradient attribution (|dE/dx| and |x * dE/dx| summed over l's
columns of a block's output, summed over a molecule's atoms, averaged over molecules).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from irrepscope.model.irreps import columns_by_l

# The numbers a training run can record too live with the model (train/ may not import analysis).
from irrepscope.model.usage import MIN_PROBE_ROWS, ablation, ridge_probe_r2, variance_share

__all__ = ["MIN_PROBE_ROWS", "ablation", "attribution_sums", "input_gradients",
           "mean_abs_pair_difference", "neighbourhood_consistency", "ridge_probe_r2",
           "variance_share"]

def mean_abs_pair_difference(values: np.ndarray) -> float:
    """Exact mean |v_i - v_j| over all pairs i != j of values [n] (O(n log n) by sorting)."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    n = len(v)
    if n < 2:
        return float("nan")
    total = np.sum(v * (2 * np.arange(n) - n + 1))
    return float(total / (n * (n - 1) / 2))


def neighbourhood_consistency(coords: np.ndarray | None, values: np.ndarray, k: int = 10) -> float:
    """Mean |value difference| to the k nearest neighbours in coords [n, 2] / over all pairs.

    1 means neighbours are no more alike than random molecules, 0 means identical; NaN values
    are left out; NaN when coords is None (no projection) or values are all equal. k is capped
    at a quarter of the molecules (with k = n - 1 the ratio would be 1 by construction).
    """
    if coords is None:
        return float("nan")
    from sklearn.neighbors import NearestNeighbors

    values = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(values)
    pts, vals = np.asarray(coords, dtype=np.float64)[keep], values[keep]
    k = min(k, max(1, (len(vals) - 1) // 4))  # tiny sets: keep neighbours a minority
    baseline = mean_abs_pair_difference(vals)
    if k < 1 or not baseline > 0:
        return float("nan")
    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(pts).kneighbors(pts)
    idx = idx[:, 1:]  # drop each point itself (ties at distance 0 may swap order; harmless)
    local = np.abs(vals[:, None] - vals[idx]).mean()
    return float(local / baseline)


def attribution_sums(x: torch.Tensor, grad: torch.Tensor | None,
                     cols: dict[int, torch.Tensor]) -> dict[int, np.ndarray]:
    """{l: [sum |dE/dx|, sum |x * dE/dx|]} over all rows (atoms) of x [N, dim] and l's columns
    (``cols`` from ``columns_by_l``); a None gradient (E independent of x) counts as zero."""
    grad = torch.zeros_like(x) if grad is None else grad
    out = {}
    for l, c in cols.items():
        c = c.to(x.device)
        out[l] = np.array([float(grad[:, c].abs().double().sum()),
                           float((grad[:, c] * x[:, c]).abs().double().sum())])
    return out


def input_gradients(model: torch.nn.Module, loader: Iterable[Any], block: int,
                    progress: bool = True) -> dict[int, dict[str, float]]:
    """{l: {"grad_abs", "grad_x_input"}}: attribution of the energy to l in block's output.

    Per molecule: sum over its atoms and l's columns of |dE/dx| (eV per feature unit) and of
    |x * dE/dx| (eV); averaged over molecules. ``block`` indexes model.block_irreps (may be < 0).
    """
    num_blocks = len(model.block_irreps)
    target = block % num_blocks
    cols = columns_by_l(model.block_irreps[target])
    sums = {l: np.zeros(2) for l in cols}
    count = 0
    device = next(model.parameters()).device
    for batch in tqdm(loader, desc=f"input gradients (block {target})", disable=not progress,
                      leave=False):
        batch = batch.to(device)
        captured: list[torch.Tensor] = []

        def hook(index: int, x: torch.Tensor, irreps: Any,
                 captured: list[torch.Tensor] = captured) -> torch.Tensor | None:
            if index != target:
                return None
            leaf = x.detach().requires_grad_(True)
            captured.append(leaf)
            return leaf

        with torch.enable_grad():
            energy = model(batch, feature_hook=hook)
            (grad,) = torch.autograd.grad(energy.sum(), captured[0], allow_unused=True)
        x = captured[0].detach()
        for l, pair in attribution_sums(x, grad, cols).items():
            sums[l] += pair
        count += int(getattr(batch, "num_graphs", 1))
    return {l: {"grad_abs": s[0] / max(count, 1), "grad_x_input": s[1] / max(count, 1)}
            for l, s in sums.items()}
