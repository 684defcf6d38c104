"""Per-target errors, losses and metrics of a run: energy, charges, dipole, quadrupole.

Loss: ``sum_t w_t * loss_t`` over ``train.targets`` (``train.target_weights``), each ``loss_t`` a
mean squared error in units of a scale: the energy in the model's normalized units (as for
energy-only runs), charges/dipole/quadrupole components divided by their root mean square over
the training split (``loss_scales``, written to ``targets.json``).

Metrics per stage (float64 sums, reduced over DDP ranks like the energy's):

- energy: ``{stage}_mse`` (eV²), ``_mae`` (eV), ``_mae_mev``, ``_count`` (unchanged names);
- charges: ``{stage}_charges_mse`` (e²), ``_charges_mae`` (e, per atom), ``_charges_count``;
- dipole: ``{stage}_dipole_mae`` = mean |d_pred - d| (e·Å, the error vector's length),
  ``_dipole_mae_debye``, ``_dipole_mse`` = mean |d_pred - d|², ``_dipole_norm_mae`` = mean
  ||d_pred| - |d|| (e·Å, comparable to invariant-only models), ``_dipole_angle_deg`` = mean angle
  between d_pred and d over molecules with |d| >= ``ANGLE_MIN_NORM`` (``_dipole_angle_count``);
- quadrupole: the same with the 5 components (e·Å²; the angle is taken in that 5-dimensional
  space), no Debye column;
- ``{stage}_loss``: the weighted loss over the epoch, for runs that train more than the energy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from irrepscope.data.targets import DEBYE_PER_E_ANGSTROM

ANGLE_MIN_NORM = 0.05  # e·Å (dipole) or e·Å² (quadrupole): below it the direction is ill-defined
VECTOR_TARGETS = ("dipole", "quadrupole")
SUM_FIELDS = {"energy": ("sse", "sae", "count"), "charges": ("sse", "sae", "count"),
              "dipole": ("sse", "sae", "norm_ae", "angle", "angle_count", "count"),
              "quadrupole": ("sse", "sae", "norm_ae", "angle", "angle_count", "count")}
COMPONENTS = {"energy": 1, "charges": 1, "dipole": 3, "quadrupole": 5}


def energy_only(targets: Mapping[str, float]) -> bool:
    """True for runs that train the energy alone (their records keep the energy-only layout)."""
    return list(targets) == ["energy"]


def predictions(model: torch.nn.Module, batch: Any, targets: Any
                ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{target: (prediction, truth)}: the energy in normalized units [M], charges [N] e,
    dipole [M, 3] e·Å, quadrupole [M, 5] e·Å²."""
    out = model.predict(batch, normalized=True)
    pairs = {}
    for name in targets:
        pred = out[name]
        if name == "energy":
            true = model.normalized_target(batch)
        else:
            true = getattr(batch, name)
        pairs[name] = (pred, true.to(pred.dtype).reshape(pred.shape))
    return pairs


def losses(pairs: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
           scales: Mapping[str, float]) -> dict[str, torch.Tensor]:
    """Per-target mean squared error in units of ``scales`` (the energy is already normalized)."""
    return {name: ((pred - true) / scales.get(name, 1.0)).pow(2).mean()
            for name, (pred, true) in pairs.items()}


def weighted_loss(per_target: Mapping[str, torch.Tensor], weights: Mapping[str, float]
                  ) -> torch.Tensor:
    """``sum_t weights[t] * per_target[t]``."""
    items = iter(per_target.items())
    name, loss = next(items)
    total = weights[name] * loss
    for name, loss in items:
        total = total + weights[name] * loss
    return total


def _angles_deg(pred: torch.Tensor, true: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of angles in degrees, count) over rows whose true norm is at least ANGLE_MIN_NORM."""
    norm = true.norm(dim=-1)
    keep = norm >= ANGLE_MIN_NORM
    cosine = (pred * true).sum(-1) / (pred.norm(dim=-1) * norm).clamp_min(1e-30)
    angles = torch.rad2deg(torch.arccos(cosine.clamp(-1.0, 1.0)))
    return (angles * keep).sum(), keep.sum().to(angles.dtype)


@torch.no_grad()
def error_sums(name: str, pred: torch.Tensor, true: torch.Tensor, energy_scale: float = 1.0
               ) -> torch.Tensor:
    """float64 sums of one batch for ``SUM_FIELDS[name]`` (energies in eV via energy_scale)."""
    pred, true = pred.detach().to(torch.float64), true.detach().to(torch.float64)
    count = torch.tensor(float(pred.shape[0]), dtype=torch.float64, device=pred.device)
    if name in ("energy", "charges"):
        err = (pred - true) * (energy_scale if name == "energy" else 1.0)
        return torch.stack([err.pow(2).sum(), err.abs().sum(), count])
    err = (pred - true).norm(dim=-1)
    angle, angle_count = _angles_deg(pred, true)
    return torch.stack([err.pow(2).sum(), err.sum(),
                        (pred.norm(dim=-1) - true.norm(dim=-1)).abs().sum(), angle,
                        angle_count, count])


def stage_metrics(stage: str, name: str, sums: torch.Tensor) -> dict[str, float]:
    """Named metrics of one target from its reduced sums (empty when it saw no data)."""
    values = dict(zip(SUM_FIELDS[name], (float(v) for v in sums), strict=True))
    count = values["count"]
    if count == 0:
        return {}
    if name == "energy":
        mae = values["sae"] / count
        return {f"{stage}_mse": values["sse"] / count, f"{stage}_mae": mae,
                f"{stage}_mae_mev": 1000.0 * mae, f"{stage}_count": count}
    prefix = f"{stage}_{name}"
    out = {f"{prefix}_mse": values["sse"] / count, f"{prefix}_mae": values["sae"] / count,
           f"{prefix}_count": count}
    if name in VECTOR_TARGETS:
        angles = values["angle_count"]
        out.update({f"{prefix}_norm_mae": values["norm_ae"] / count,
                    f"{prefix}_angle_deg": values["angle"] / angles if angles else math.nan,
                    f"{prefix}_angle_count": angles})
    if name == "dipole":
        out[f"{prefix}_mae_debye"] = out[f"{prefix}_mae"] * DEBYE_PER_E_ANGSTROM
    return out


def epoch_loss(stage: str, sums: Mapping[str, torch.Tensor], weights: Mapping[str, float],
               scales: Mapping[str, float], energy_scale: float) -> dict[str, float]:
    """``{stage}_loss``: the weighted per-target normalized MSE of the epoch's sums."""
    total = 0.0
    for name, weight in weights.items():
        sse, count = float(sums[name][0]), float(sums[name][-1])
        if count == 0:
            return {}
        unit = energy_scale if name == "energy" else scales.get(name, 1.0)
        total += weight * sse / (count * COMPONENTS[name] * unit ** 2)
    return {f"{stage}_loss": total}
