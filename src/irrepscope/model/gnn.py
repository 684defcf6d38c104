"""The equivariant GNN of the paper (section 2, A.3): energies in eV and per-block embeddings.

Architecture: atom embedding (``num_elements`` x ``embedding_dim``, index 0 padding, read as
``embedding_dim x 0e``) -> input block (64x0e -> hidden irreps) -> ``num_layers + 1`` residual
hidden -> hidden blocks -> per-atom ``o3.Linear`` to ``output_dim x 0e`` -> sum over each
molecule's atoms -> ``nn.Linear(output_dim, 1)`` = normalized energy -> energy reference
(``model.references``: ``* label_std + label_mean``, or ``* residual_std + sum of fitted
per-element energies``) = energy in eV. Hidden irreps: ``hidden`` copies of every order of
``config.feature_orders``; the edges' spherical harmonics have the orders of ``config.orders``.
Other targets (charges, dipole, quadrupole) have their own heads (``model.heads``), built only
when asked for, so energy-only models are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from e3nn import o3
from torch import nn

from irrepscope.errors import DataError
from irrepscope.model.config import ModelConfig, model_config_of
from irrepscope.model.dtype import default_dtype
from irrepscope.model.edge_layout import edge_layout
from irrepscope.model.heads import TargetHeads
from irrepscope.model.interaction import InteractionBlock, edge_features
from irrepscope.model.irreps import hidden_irreps, sh_irreps
from irrepscope.model.references import EnergyReference

FeatureHook = Callable[[int, torch.Tensor, o3.Irreps], "torch.Tensor | None"]


@dataclass
class ModelOutput:
    """energy [B] eV; per block: node_features [N, dim], graph_embeddings [B, dim], irreps."""

    energy: torch.Tensor
    node_features: list[torch.Tensor]
    graph_embeddings: list[torch.Tensor]
    irreps: list[o3.Irreps]


def _molecule_index(batch: Any, num_atoms: int, device: torch.device) -> tuple[torch.Tensor, int]:
    """(atom -> molecule index [N], number of molecules) of a PyG Batch, or of a single Data."""
    index = getattr(batch, "batch", None)
    if index is None:
        return torch.zeros(num_atoms, dtype=torch.long, device=device), 1
    num_graphs = getattr(batch, "num_graphs", None)
    if num_graphs is None:
        num_graphs = int(index.max()) + 1 if index.numel() else 0
    return index, int(num_graphs)


class EquivariantGNN(nn.Module):
    """forward(batch) -> energies [num_molecules] (eV); embed(batch) -> ModelOutput.

    ``batch`` is a PyG Batch (or Data) with ``z`` [N] (atomic numbers), ``pos`` [N, 3] (Å),
    ``edge_index`` [2, E] (source -> target) and, for several molecules, ``batch`` [N].
    """

    def __init__(self, config: ModelConfig, targets: Sequence[str] = ("energy",)) -> None:
        super().__init__()
        self.config = config.validate()
        c = self.config
        self.irreps_embedding = o3.Irreps(f"{c.embedding_dim}x0e")
        self.irreps_sh = sh_irreps(c.orders)
        self.irreps_hidden = hidden_irreps(c.feature_orders, c.hidden)
        self.embedding = nn.Embedding(c.num_elements, c.embedding_dim, padding_idx=0)
        common = dict(num_basis=c.num_basis, radial_hidden=c.hidden, degree_norm=c.degree_norm,
                      tensor_product=c.tensor_product, aggregate=c.aggregate, gate=c.gate,
                      irrep_dropout=c.irrep_dropout)
        blocks = [InteractionBlock(self.irreps_embedding, self.irreps_sh, self.irreps_hidden,
                                   residual=False, **common)]
        blocks += [InteractionBlock(self.irreps_hidden, self.irreps_sh, self.irreps_hidden,
                                    residual=True, **common) for _ in range(c.num_layers + 1)]
        self.blocks = nn.ModuleList(blocks)
        self.readout = o3.Linear(self.irreps_hidden, o3.Irreps(f"{c.output_dim}x0e"))
        self.head = nn.Linear(c.output_dim, 1)
        self.reference = EnergyReference(c.energy_reference, c.num_elements, c.label_mean,
                                         c.label_std)
        others = [t for t in targets if t != "energy"]
        self.target_heads = (TargetHeads(self.irreps_hidden, others, c.num_elements)
                             if others else None)
        if c.readout_init == "zero":  # after every random draw: other weights stay the same
            with torch.no_grad():
                self.readout.weight.zero_()
                self.head.bias.zero_()
        self._check_irreps_chain()

    def _check_irreps_chain(self) -> None:
        """Each block takes the irreps the one before gives; the readout takes the last one's."""
        given = self.irreps_embedding
        for index, block in enumerate(self.blocks):
            if block.irreps_in != given or block.message.irreps_in != given:
                raise RuntimeError(f"block {index} takes {block.irreps_in}, is given {given}")
            given = block.irreps_out
        if self.readout.irreps_in != given:
            raise RuntimeError(f"readout takes {self.readout.irreps_in}, is given {given}")

    @property
    def block_irreps(self) -> list[o3.Irreps]:
        """Irreps of every block's output node features (block 0 is the input block)."""
        return [block.irreps_out for block in self.blocks]

    def _check_elements(self, z: torch.Tensor) -> None:
        if torch.compiler.is_compiling() or z.numel() == 0:
            return
        low, high = int(z.min()), int(z.max())
        if low < 1 or high >= self.config.num_elements:
            raise DataError(f"atomic numbers must be in 1..{self.config.num_elements - 1} "
                            f"(model.num_elements={self.config.num_elements}), got {low}..{high}")

    def _node_features(self, batch: Any, feature_hook: FeatureHook | None,
                       keep: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Final node features [N, hidden dim] and, when ``keep``, every block's output."""
        z = batch.z
        self._check_elements(z)
        pos = batch.pos.to(self.embedding.weight.dtype)
        c = self.config
        edge_index = batch.edge_index
        num_edges, num_nodes = edge_index.shape[1], z.shape[0]
        aggregated = [block.message.aggregates(num_edges, num_nodes) for block in self.blocks]
        layout = None
        if any(aggregated):  # edges by (in-degree, target), once for every block
            layout = edge_layout(edge_index, num_nodes)
            edge_index = edge_index[:, layout.order]
        sh, radial = edge_features(pos, edge_index, c.orders, c.num_basis, c.cutoff, c.sh_backend)
        x = self.embedding(z)
        sh, radial = sh.to(x.dtype), radial.to(x.dtype)
        kept = []
        shared: dict[tuple, torch.Tensor] = {}  # SH-only operands, once per distinct message step
        for index, (block, summed_first) in enumerate(zip(self.blocks, aggregated, strict=True)):
            key = block.message.edge_operand_key(summed_first)
            if key is not None and key not in shared:
                shared[key] = block.message.edge_operand(sh, summed_first)
            x = block(x, edge_index, sh, radial, shared.get(key), layout)
            if feature_hook is not None:
                replaced = feature_hook(index, x, block.irreps_out)
                x = x if replaced is None else replaced
            if keep:
                kept.append(x)
        return x, kept

    @property
    def energy_scale(self) -> float:
        """eV per unit of the normalized output (label_std, or the fitted residual std)."""
        return self.reference.scale

    def normalized_target(self, batch: Any) -> torch.Tensor:
        """The energies ``batch.y`` (eV) in the model's normalized units [num_molecules]."""
        molecule, _ = _molecule_index(batch, batch.z.shape[0], batch.z.device)
        y = batch.y.view(-1).to(self.embedding.weight.dtype)
        return self.reference.normalize(y, batch.z, molecule)

    def _energy(self, x: torch.Tensor, z: torch.Tensor, molecule: torch.Tensor,
                num_molecules: int, normalized: bool) -> torch.Tensor:
        per_atom = self.readout(x)
        pooled = torch.zeros(num_molecules, per_atom.shape[-1], dtype=x.dtype, device=x.device)
        out = self.head(pooled.index_add(0, molecule, per_atom)).squeeze(-1)
        return out if normalized else self.reference.to_energy(out, z, molecule)

    def forward(self, batch: Any, feature_hook: FeatureHook | None = None,
                normalized: bool = False) -> torch.Tensor:
        """Energies [num_molecules] in eV (or in label-normalized units when ``normalized``).

        ``feature_hook(block_index, features [N, dim], irreps)`` sees every block's output; a
        returned tensor replaces the features downstream (None keeps them).
        """
        x, _ = self._node_features(batch, feature_hook, keep=False)
        molecule, num_molecules = _molecule_index(batch, x.shape[0], x.device)
        return self._energy(x, batch.z, molecule, num_molecules, normalized)

    def predict(self, batch: Any, normalized: bool = False) -> dict[str, torch.Tensor]:
        """{'energy': [M] eV (normalized units when ``normalized``)} plus the outputs of the
        other heads: 'charges' [N] e, 'dipole' [M, 3] e·Å, 'quadrupole' [M, 5] e·Å²."""
        x, _ = self._node_features(batch, None, keep=False)
        molecule, num_molecules = _molecule_index(batch, x.shape[0], x.device)
        out = {"energy": self._energy(x, batch.z, molecule, num_molecules, normalized)}
        if self.target_heads is not None:
            out.update(self.target_heads(x, batch.z, batch.pos, molecule, num_molecules))
        return out

    def embed(self, batch: Any, feature_hook: FeatureHook | None = None) -> ModelOutput:
        """Energies (eV) plus every block's node features and per-molecule sums, with irreps."""
        x, kept = self._node_features(batch, feature_hook, keep=True)
        molecule, num_molecules = _molecule_index(batch, x.shape[0], x.device)
        graphs = [torch.zeros(num_molecules, f.shape[-1], dtype=f.dtype, device=f.device)
                  .index_add(0, molecule, f) for f in kept]
        energy = self._energy(x, batch.z, molecule, num_molecules, normalized=False)
        return ModelOutput(energy, kept, graphs, self.block_irreps)


def build_model(config: Any, dtype: torch.dtype | None = None,
                targets: Sequence[str] | None = None) -> EquivariantGNN:
    """Build the model of a ModelConfig / run config (weights from torch's current RNG state).

    ``targets`` (default: a run config's ``train.targets``, else energy only) adds the heads of
    charges, dipole and quadrupole (``model.heads``).

    ``dtype`` (default: torch's default dtype) is the dtype everything is built in. For float64
    pass it here rather than calling ``.double()`` afterwards: e3nn's Clebsch-Gordan constants
    are created in the build dtype, and upcasting float32 ones leaves ~1e-8 equivariance errors.
    """
    from irrepscope.model.info import check_model_fits  # info counts the blocks this builds

    if targets is None:
        targets = list(getattr(getattr(config, "train", None), "targets", None) or ["energy"])
    config = model_config_of(config)
    check_model_fits(config, dtype)
    with default_dtype(dtype):
        return EquivariantGNN(config, targets)
