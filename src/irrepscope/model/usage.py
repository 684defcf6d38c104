"""How much a model uses each order l on a set of molecules: the numbers that need only the model
and its pooled features, shared by the analysis of trained runs and by training itself.

Per l: variance share of the graph embedding; cross-validated ridge-probe R^2 of a target from
l's invariant features; ablation (relative change of the MSE when l is zeroed inside every
block). ``analysis.utilization`` adds the numbers that need projections or gradients.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from irrepscope.model.irreps import zero_orders

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


def predict(model: torch.nn.Module, loader: Iterable[Any], hook: Any = None,
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
        pred, true = predict(model, loader, None, "ablation: baseline", progress)
        baseline = float(np.mean((pred - true) ** 2))
    base = baseline
    out = {}
    for l in orders:
        def hook(index: int, x: torch.Tensor, irreps: Any, l: int = l) -> torch.Tensor:
            return zero_orders(x, irreps, [l])

        pred, true = predict(model, loader, hook, f"ablation: zero l={l}", progress)
        mse = float(np.mean((pred - true) ** 2))
        out[l] = (mse - base) / base if base > 0 else float("nan")
    return base, out




def usage_rows(model: torch.nn.Module, batches: Iterable[Any], seed: int = 0,
               ablation_batches: int | None = None) -> list[dict[str, Any]]:
    """Per block and l of ``model`` (an ``EquivariantGNN``) on the molecules of ``batches`` (PyG
    batches): variance share of the pooled embedding, probe R^2 of the energy (eV) from l's
    invariant features, and, in the last block's rows only, the ablation's relative MSE change
    with l zeroed in every block (NaN elsewhere; ``MIN_PROBE_ROWS`` applies to the probe). The
    ablation uses the first ``ablation_batches`` batches (None: all), its |L| passes being the
    cost.

    Gradients are off and the model's mode is left as it was; uses no global random state.
    """
    from irrepscope.model.irreps import features_by_l, invariants_by_l

    batches = list(batches)
    device = next(model.parameters()).device
    pooled: list[list[torch.Tensor]] = []
    preds, trues = [], []
    with torch.no_grad():
        for batch in batches:
            batch = batch.to(device)
            out = model.embed(batch)
            pooled.append([g.double().cpu() for g in out.graph_embeddings])
            preds.append(out.energy.double().cpu())
            trues.append(batch.y.reshape(-1).double().cpu())
        irreps = model.block_irreps
        true = torch.cat(trues).numpy()
        some = batches[:ablation_batches]
        count = sum(len(t) for t in trues[:len(some)])
        mse = float(np.mean((torch.cat(preds).numpy()[:count] - true[:count]) ** 2))
        last = len(irreps) - 1
        orders = sorted({ir.l for _, ir in irreps[last]})
        _, ablated = ablation(model, some, orders, progress=False, baseline=mse)
    rows = []
    for block, block_irreps in enumerate(irreps):
        joint = torch.cat([parts[block] for parts in pooled])
        raw = {l: x.reshape(x.shape[0], -1).numpy()
               for l, x in features_by_l(joint, block_irreps).items()}
        invariant = invariants_by_l(joint, block_irreps)
        share = variance_share(raw)
        for l in raw:
            rows.append({"block": block, "l": l, "variance_share": share[l],
                         "probe_r2_energy": ridge_probe_r2(invariant[l].numpy(), true, seed=seed),
                         "ablation_rel_mse": ablated[l] if block == last else float("nan")})
    return rows
