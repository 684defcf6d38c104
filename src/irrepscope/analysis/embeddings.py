"""Graph embeddings of a trained run's own test split, joint and split per order l.

The test indices come from the run directory's split.npz (never recomputed) and the weights
from its best checkpoint. Per l there are two views of a block's pooled embedding:
raw - l's mul*(2l+1) columns (channel-major, m = -l..l inside a channel), as in the paper;
invariant - the norm of each channel's (2l+1)-vector, mul numbers (l=0: the scalar itself),
unchanged when the molecule is rotated (raw l>0 components are not).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from e3nn import o3
from tqdm.auto import tqdm

from irrepscope.errors import ConfigError, RunDirError
from irrepscope.files import atomic_output
from irrepscope.model.irreps import features_by_l, invariants_by_l


def graph_embeddings_by_l(joint: np.ndarray | torch.Tensor,
                          irreps: o3.Irreps | str) -> dict[int, dict[str, np.ndarray]]:
    """{l: {"raw": [n, mul*(2l+1)], "invariant": [n, mul]}} of joint [n, irreps.dim] (float64)."""
    x = torch.as_tensor(np.asarray(joint), dtype=torch.float64)
    raw = features_by_l(x, irreps)
    inv = invariants_by_l(x, irreps)
    return {l: {"raw": raw[l].reshape(x.shape[0], -1).numpy(), "invariant": inv[l].numpy()}
            for l in raw}


def joint_view(by_l: dict[int, dict[str, np.ndarray]], view: str) -> np.ndarray:
    """The whole embedding in one view: columns of every l in that view, concatenated [n, d]."""
    return np.concatenate([by_l[l][view] for l in sorted(by_l)], axis=1)


@dataclass
class RunEmbeddings:
    """A run's test-split embeddings: per block joint [n, dim] float64 with its irreps."""

    run_dir: Path
    test_indices: np.ndarray  # [n] positions in the run's dataset, as stored in split.npz
    smiles: list[str]
    energy_true: np.ndarray  # [n] eV
    energy_pred: np.ndarray  # [n] eV
    joint: dict[int, np.ndarray] = field(default_factory=dict)  # block -> [n, dim]
    irreps: dict[int, str] = field(default_factory=dict)  # block -> irreps string

    def by_l(self, block: int) -> dict[int, dict[str, np.ndarray]]:
        """graph_embeddings_by_l of one block."""
        return graph_embeddings_by_l(self.joint[block], self.irreps[block])

    def save(self, path: Path) -> Path:
        """Write an .npz: test_indices, smiles, energies, block<b> (joint) and irreps_<b>."""
        arrays: dict[str, Any] = {
            "test_indices": self.test_indices, "smiles": np.asarray(self.smiles, dtype=str),
            "energy_true": self.energy_true, "energy_pred": self.energy_pred,
        }
        for b, x in self.joint.items():
            arrays[f"block{b}"] = x
            arrays[f"irreps{b}"] = np.asarray(self.irreps[b])
            for l, views in self.by_l(b).items():
                arrays[f"block{b}_l{l}_raw"] = views["raw"]
                arrays[f"block{b}_l{l}_invariant"] = views["invariant"]
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path) as handle:
            np.savez_compressed(handle, **arrays)
        return path


@dataclass
class TrainedRun:
    """A loaded run: model (eval mode), config, test-set graphs and their dataset positions."""

    run_dir: Path
    model: torch.nn.Module
    config: Any
    test_indices: np.ndarray
    test_graphs: list[Any]

    def loader(self, batch_size: int = 64) -> Any:
        """PyG DataLoader over the test graphs in split order (no shuffling)."""
        from torch_geometric.loader import DataLoader

        return DataLoader(self.test_graphs, batch_size=batch_size, shuffle=False)


def open_run(run_dir: Path, checkpoint: str = "best", progress: bool = True) -> TrainedRun:
    """Load a run's best model, its dataset and the test indices stored in its split.npz."""
    from irrepscope.train.run import load_run_dataset, load_run_split, load_trained_model

    run_dir = Path(run_dir)
    if not (run_dir / "split.npz").exists():
        raise RunDirError(f"{run_dir}: no split.npz; `irrepscope train` writes it")
    model, config = load_trained_model(run_dir, checkpoint=checkpoint)
    model.eval()
    split = load_run_split(run_dir)
    dataset = load_run_dataset(run_dir)
    test = np.asarray(split.test, dtype=np.int64)
    if test.size == 0:
        raise RunDirError(f"{run_dir}: split.npz has an empty test split; nothing to analyse")
    if test.min() < 0 or test.max() >= len(dataset):
        raise RunDirError(f"{run_dir}: split.npz test indices reach {int(test.max())} but the "
                          f"run's dataset has {len(dataset)} molecules; was the data changed?")
    graphs = [dataset[int(i)] for i in tqdm(test, desc="test graphs", disable=not progress,
                                            leave=False)]
    return TrainedRun(run_dir, model, config, test, graphs)


def compute_embeddings(run: TrainedRun, blocks: list[int] | None = None, batch_size: int = 64,
                       progress: bool = True) -> RunEmbeddings:
    """Pooled graph embeddings of the last block and of ``blocks`` (indices, may be < 0)."""
    num_blocks = len(run.model.block_irreps)
    for b in blocks or []:
        if not -num_blocks <= b < num_blocks:
            raise ConfigError(f"{run.run_dir}: block {b} does not exist; the model has "
                              f"{num_blocks} blocks (0..{num_blocks - 1})")
    wanted = sorted({num_blocks - 1, *((b % num_blocks) for b in (blocks or []))})
    parts: dict[int, list[torch.Tensor]] = {b: [] for b in wanted}
    preds, trues = [], []
    device = next(run.model.parameters()).device
    with torch.no_grad():
        for batch in tqdm(run.loader(batch_size), desc=f"embeddings {run.run_dir.name}",
                          disable=not progress, leave=False):
            out = run.model.embed(batch.to(device))
            for b in wanted:
                parts[b].append(out.graph_embeddings[b].double().cpu())
            preds.append(out.energy.double().cpu())
            trues.append(batch.y.reshape(-1).double().cpu())
    irreps = run.model.block_irreps
    return RunEmbeddings(
        run_dir=run.run_dir, test_indices=run.test_indices,
        smiles=[str(g.smiles) for g in run.test_graphs],
        energy_true=torch.cat(trues).numpy(), energy_pred=torch.cat(preds).numpy(),
        joint={b: torch.cat(parts[b]).numpy() for b in wanted},
        irreps={b: str(irreps[b]) for b in wanted},
    )
