"""Worked example: a small NequIP model (nequip's own builder) trained on a QM9 subset read
through irrepscope's data pipeline, then analysed like an irrepscope run.

    python -m irrepscope.analysis.adapters.nequip_demo --out runs/nequip_demo

Training is a plain PyTorch loop (Adam, energy MSE) over nequip batches, not nequip's Hydra
training path: the molecules, their U0 atomization energies (eV) and the seeded split come from
``irrepscope.data``. nequip's per-type energy shifts are set to the element-count least-squares
fit of the training molecules (the composition baseline), so the network learns the residual.
Writes ``metrics.json`` (test MAE beside the composition baseline's), ``features.npz`` (the
test molecules' layer features, a features file) and the report in ``analysis/``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from irrepscope.analysis.adapters.nequip import (
    NequIPProbe,
    capture_features,
    nequip_forward,
    nequip_global_state,
    to_nequip_batch,
)
from irrepscope.model.references import element_counts, fit_element_energies

TYPE_NAMES = ["H", "C", "N", "O", "F"]


def qm9_molecules(count: int, seed: int, qm9_dir: str | None = None,
                  data_dir: str | None = None) -> tuple[list[Any], np.ndarray, list[str]]:
    """(ase.Atoms, energies [count] eV, SMILES) of ``count`` QM9 molecules drawn with ``seed``."""
    from ase import Atoms

    from irrepscope.data import load_dataset

    kwargs = {} if qm9_dir is None else {"qm9_dir": qm9_dir}
    dataset = load_dataset("qm9", data_dir=data_dir, progress=False, **kwargs)
    pick = np.random.default_rng(seed).choice(len(dataset), size=min(count, len(dataset)),
                                              replace=False)
    graphs = [dataset[int(i)] for i in pick]
    atoms = [Atoms(numbers=g.z.numpy(), positions=g.pos.double().numpy()) for g in graphs]
    return atoms, np.array([float(g.y) for g in graphs]), [str(g.smiles) for g in graphs]


def composition_counts(atoms: list[Any]) -> np.ndarray:
    """Element counts [molecules, 10] (index = atomic number) of ``atoms``."""
    z = np.concatenate([a.get_atomic_numbers() for a in atoms])
    return element_counts(z, [len(a) for a in atoms], 10)


def build_small_nequip(shifts: np.ndarray, scale: float, seed: int = 0) -> torch.nn.Module:
    """NequIPGNNModel: 3 layers, l_max 2, 8 channels per irrep, r_max 5 Å, float32."""
    from nequip.model import NequIPGNNModel

    shifts_by_type = dict(zip(TYPE_NAMES, map(float, shifts), strict=True))
    with nequip_global_state():
        return NequIPGNNModel(seed=seed, model_dtype="float32", type_names=TYPE_NAMES,
                              r_max=5.0, num_layers=3, l_max=2, num_features=8,
                              radial_mlp_width=32, per_type_energy_shifts=shifts_by_type,
                              per_type_energy_scales=float(scale), avg_num_neighbors=8.0,
                              do_derivatives=False)


def fit(model: torch.nn.Module, atoms: list[Any], energies: np.ndarray, epochs: int,
        seconds: float, batch_size: int = 32, lr: float = 5e-3, seed: int = 0
        ) -> list[float]:
    """Adam on the energy MSE for ``epochs`` or ``seconds``, whichever ends first; returns the
    mean training MSE (eV^2) of each epoch."""
    batches = [(to_nequip_batch(model, atoms[s:s + batch_size], s),
                torch.as_tensor(energies[s:s + batch_size], dtype=torch.float32))
               for s in range(0, len(atoms), batch_size)]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    order_rng, history, start = np.random.default_rng(seed), [], time.perf_counter()
    model.train()
    with nequip_forward(model):
        for _ in range(epochs):
            losses = []
            for b in order_rng.permutation(len(batches)):
                batch, target = batches[b]
                loss = torch.mean((model(batch)["total_energy"].reshape(-1) - target) ** 2)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
            history.append(float(np.mean(losses)))
            if time.perf_counter() - start > seconds:
                break
    return history


def run_demo(out: Path, molecules: int = 1500, epochs: int = 100, minutes: float = 3.0,
             seed: int = 0, qm9_dir: str | None = None, data_dir: str | None = None,
             analyse: bool = True) -> dict[str, Any]:
    """Train, evaluate against the composition baseline, write the features file and report."""
    from irrepscope.analysis.features import analyze_features, save_features

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    atoms, energies, smiles = qm9_molecules(molecules, seed, qm9_dir, data_dir)
    n_train = int(0.8 * len(atoms))
    train_atoms, test_atoms = atoms[:n_train], atoms[n_train:]
    # the composition baseline: the same least squares as irrepscope's energy references
    composition = fit_element_energies(composition_counts(train_atoms), energies[:n_train],
                                       "the demo's training molecules")
    shifts = composition.energies[[1, 6, 7, 8, 9]]  # TYPE_NAMES order
    model = build_small_nequip(shifts, composition.residual_std, seed)
    start = time.perf_counter()
    history = fit(model, train_atoms, energies[:n_train], epochs, minutes * 60, seed=seed)
    seconds = time.perf_counter() - start
    model.eval()
    test_y = energies[n_train:]
    features = capture_features(model, test_atoms, targets=test_y, smiles=smiles[n_train:],
                                source=str(out / "features.npz"))
    metrics = {
        "molecules": len(atoms), "train": n_train, "test": len(test_atoms),
        "epochs": len(history), "train_seconds": round(seconds, 1),
        "train_mse_per_epoch": history,
        "test_mae_eV": float(np.mean(np.abs(features.predictions - test_y))),
        "composition_baseline_test_mae_eV": float(np.mean(np.abs(
            composition.predict(composition_counts(test_atoms)) - test_y))),
        "parameters": sum(p.numel() for p in model.parameters()),
        "layers": {layer.name: str(layer.irreps) for layer in features.layers},
        "threads": torch.get_num_threads(),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    save_features(features, out / "features.npz")
    if analyse:
        probe = NequIPProbe(model, test_atoms, test_y)
        metrics["report"] = str(analyze_features(features, out / "analysis", probe=probe,
                                                 seed=seed))
    return metrics


def main(argv: list[str] | None = None) -> int:
    """Command line of the worked example (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/nequip_demo"))
    parser.add_argument("--molecules", type=int, default=1500)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=3.0, help="training time budget")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    metrics = run_demo(args.out, args.molecules, args.epochs, args.minutes, args.seed)
    summary = {k: v for k, v in metrics.items() if k != "train_mse_per_epoch"}
    print(json.dumps(summary, indent=2), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
