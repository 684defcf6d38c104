"""How much a trained model uses each order l: numbers behind the paper's visual reading.

Per l: variance share of the graph embedding; cross-validated ridge-probe R^2 of a target from
l's invariant features; neighbourhood consistency of NSPS in l's projection (1 = no structure,
0 = neighbours have identical NSPS); ablation (relative change of test MSE when l is zeroed
inside every block); input-gradient attribution (|dE/dx| and |x * dE/dx| summed over l's
columns of a block's output, summed over a molecule's atoms, averaged over molecules).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from irrepscope.model.irreps import columns_by_l, zero_orders

# Fewer molecules than this make a cross-validated R^2 noise (5 test molecules gave -5540).
MIN_PROBE_ROWS = 30


def variance_share(per_l: Mapping[int, np.ndarray]) -> dict[int, float]:
    """{l: share of the total variance (sum over columns) carried by l's raw columns [n, d_l]};
    0 for every l when the features do not vary at all (no l carries any variance)."""
    var = {l: float(np.var(np.asarray(x, dtype=np.float64), axis=0).sum())
           for l, x in per_l.items()}
    total = sum(var.values())
    return {l: (v / total if total > 0 else 0.0) for l, v in var.items()}


def ridge_probe_r2(features: np.ndarray, target: np.ndarray, folds: int = 5,
                   seed: int = 0) -> float:
    """Out-of-fold R^2 of a standardized ridge regression (alpha by inner CV) of target [n].

    Rows with a NaN target are left out; NaN if fewer than ``MIN_PROBE_ROWS`` usable rows remain
    or the target is constant. Constant features give R^2 <= ~0.
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    keep = np.isfinite(y)
    x, y = x[keep], y[keep]
    folds = min(folds, len(y) // 2)
    if len(y) < MIN_PROBE_ROWS or folds < 2 or np.ptp(y) == 0 or x.shape[1] == 0:
        return float("nan")
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-4, 4, 17)))
    cv = KFold(n_splits=folds, shuffle=True, random_state=seed)
    pred = cross_val_predict(model, x, y, cv=cv)
    return float(1.0 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2))


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


def _predict(model: torch.nn.Module, loader: Iterable[Any], hook: Any = None,
             desc: str = "", progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, true) energies [n] in eV over loader's batches."""
    preds, trues = [], []
    device = next(model.parameters()).device
    with torch.no_grad():
        for batch in tqdm(loader, desc=desc, disable=not progress, leave=False):
            batch = batch.to(device)
            preds.append(model(batch, feature_hook=hook).double().cpu())
            trues.append(batch.y.reshape(-1).double().cpu())
    return torch.cat(preds).numpy(), torch.cat(trues).numpy()


def ablation(model: torch.nn.Module, loader: Iterable[Any], orders: Iterable[int],
             progress: bool = True, baseline: float | None = None
             ) -> tuple[float, dict[int, float]]:
    """(test MSE in eV^2, {l: (MSE with l zeroed in every block - MSE) / MSE}).

    ``baseline``: the unablated MSE over the same molecules when already known (saves a pass).
    """
    if baseline is None:
        pred, true = _predict(model, loader, None, "ablation: baseline", progress)
        baseline = float(np.mean((pred - true) ** 2))
    base = baseline
    out = {}
    for l in orders:
        def hook(index: int, x: torch.Tensor, irreps: Any, l: int = l) -> torch.Tensor:
            return zero_orders(x, irreps, [l])

        pred, true = _predict(model, loader, hook, f"ablation: zero l={l}", progress)
        mse = float(np.mean((pred - true) ** 2))
        out[l] = (mse - base) / base if base > 0 else float("nan")
    return base, out


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
