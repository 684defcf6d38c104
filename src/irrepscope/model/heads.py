"""Output heads beyond the energy: per-atom charges (0e), dipole (1o), quadrupole (2e).

Each head maps an atom's final hidden features x_i (``irreps_hidden``) and its position about
the molecule's centre of mass r_i (Å) to one irrep per atom (``AtomHead``):

- **linear** when the hidden irreps hold the target irrep (``o3.Linear`` of those channels),
- else a **tensor product** ``FullyConnectedTensorProduct(x_i, Y(r_i / |r_i|))`` into it, with
  the spherical harmonics (e3nn, 'component') of the orders ``coupling_orders`` gives: for each
  hidden order l the lowest l' in |l - k|..l + k whose parity makes l x l' -> k allowed. So every
  order set works, e.g. L=[0, 3, 4, 5, 6] (dipole: l' = 1..5) and L=[0, 2, 4] (dipole: l' = 1, 3).

The molecule outputs (``TargetHeads``) are physical sums: charges ``q_i`` = charge head minus its
molecule mean (so each molecule stays neutral), dipole ``sum_i q_i r_i + v_i`` (e·Å) and
quadrupole ``sum_i q_i Q(r_i) + u_i`` (e·Å², ``Q(r)`` = the l=2 components of (3 r r^T - |r|^2 I)
/ 2 in ``data.targets``' basis), with v_i, u_i the dipole/quadrupole heads' per-atom outputs.
Everything is equivariant: charges invariant, the dipole rotates with D^1 = R and flips under
inversion, the quadrupole rotates with D^2; all are unchanged by translation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from e3nn import o3
from torch import nn

from irrepscope.data.targets import L2_BASIS, atomic_masses
from irrepscope.errors import ConfigError

HEAD_IRREPS = {"charges": o3.Irrep("0e"), "dipole": o3.Irrep("1o"), "quadrupole": o3.Irrep("2e")}


def coupling_orders(irreps_hidden: o3.Irreps, target: o3.Irrep) -> list[int]:
    """Sorted SH orders l' (SH parity (-1)^l') coupling each hidden irrep other than ``target``
    to ``target`` in a tensor product: the lowest allowed l' per hidden irrep."""
    orders = set()
    for _, ir in o3.Irreps(irreps_hidden):
        if ir == target:
            continue
        for order in range(abs(ir.l - target.l), ir.l + target.l + 1):
            if ir.p * (-1) ** order == target.p:
                orders.add(order)
                break
    return sorted(orders)


def head_kind(irreps_hidden: o3.Irreps, target: o3.Irrep) -> str:
    """'linear' when the hidden irreps hold ``target``, else 'tensor product'."""
    return "linear" if target in [ir for _, ir in o3.Irreps(irreps_hidden)] else "tensor product"


class AtomHead(nn.Module):
    """forward(x [N, irreps_hidden.dim], r [N, 3] Å) -> [N, target.dim]: one ``target`` per atom."""

    def __init__(self, irreps_hidden: o3.Irreps | str, target: o3.Irrep | str,
                 name: str = "head") -> None:
        super().__init__()
        self.irreps_hidden, self.target = o3.Irreps(irreps_hidden), o3.Irrep(target)
        self.kind = head_kind(self.irreps_hidden, self.target)
        out = o3.Irreps([(1, self.target)])
        if self.kind == "linear":
            self.linear = o3.Linear(self.irreps_hidden, out)
            self.orders: list[int] = []
            return
        self.orders = coupling_orders(self.irreps_hidden, self.target)
        if not self.orders:
            raise ConfigError(f"the {name} head ({self.target}) cannot be built from hidden "
                              f"irreps {self.irreps_hidden}: no order couples to it; use model "
                              f"orders that include 0")
        self.irreps_sh = o3.Irreps([(1, (l, (-1) ** l)) for l in self.orders])
        self.product = o3.FullyConnectedTensorProduct(self.irreps_hidden, self.irreps_sh, out)

    def forward(self, x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        if self.kind == "linear":
            return self.linear(x)
        sh = o3.spherical_harmonics(self.irreps_sh, r, normalize=True, normalization="component")
        return self.product(x, sh)


def quadrupole_components(r: torch.Tensor) -> torch.Tensor:
    """l=2 components [N, 5] of (3 r r^T - |r|^2 I) / 2 for r [N, 3] (data.targets' basis)."""
    basis = torch.as_tensor(L2_BASIS, dtype=r.dtype, device=r.device)
    return 1.5 * torch.einsum("ni,mij,nj->nm", r, basis, r)  # the basis is traceless


def _per_molecule(values: torch.Tensor, molecule: torch.Tensor, num_molecules: int
                  ) -> torch.Tensor:
    out = values.new_zeros((num_molecules, *values.shape[1:]))
    return out.index_add(0, molecule, values)


class TargetHeads(nn.Module):
    """The heads of ``targets`` (charges, dipole, quadrupole; the energy is the model's readout).

    forward(x [N, hidden dim], z [N], pos [N, 3] Å, molecule [N], num_molecules) -> dict with
    ``charges`` [N] e, ``dipole`` [M, 3] e·Å, ``quadrupole`` [M, 5] e·Å² for the targets asked.
    A dipole or quadrupole head brings the charge head with it (its charges carry them).
    """

    def __init__(self, irreps_hidden: o3.Irreps | str, targets: Sequence[str],
                 num_elements: int) -> None:
        super().__init__()
        unknown = [t for t in targets if t not in HEAD_IRREPS]
        if unknown:
            raise ConfigError(f"no output head for {', '.join(unknown)}; heads exist for "
                              f"{', '.join(HEAD_IRREPS)} (and the energy)")
        self.targets = [t for t in HEAD_IRREPS if t in targets]
        built = ["charges", *self.targets] if self.targets else []
        self.heads = nn.ModuleDict({t: AtomHead(irreps_hidden, HEAD_IRREPS[t], t)
                                    for t in dict.fromkeys(built)})
        masses = torch.as_tensor(atomic_masses(np.arange(num_elements)),
                                 dtype=torch.get_default_dtype())
        self.register_buffer("atomic_masses", masses, persistent=False)

    def describe(self) -> dict[str, str]:
        """{target: 'linear' or 'tensor product with Y^l' (l', ...)} of every built head."""
        return {t: head.kind + (f" with Y^l' l'={head.orders}" if head.orders else "")
                for t, head in self.heads.items()}

    def relative_positions(self, z: torch.Tensor, pos: torch.Tensor, molecule: torch.Tensor,
                           num_molecules: int) -> torch.Tensor:
        """Positions about each molecule's centre of mass [N, 3] Å."""
        mass = self.atomic_masses.to(pos.dtype)[z].unsqueeze(-1)
        total = _per_molecule(mass, molecule, num_molecules)
        centre = _per_molecule(mass * pos, molecule, num_molecules) / total
        return pos - centre[molecule]

    def forward(self, x: torch.Tensor, z: torch.Tensor, pos: torch.Tensor,
                molecule: torch.Tensor, num_molecules: int) -> dict[str, torch.Tensor]:
        if not self.targets:
            return {}
        r = self.relative_positions(z, pos.to(x.dtype), molecule, num_molecules)
        raw = self.heads["charges"](x, r).squeeze(-1)
        count = _per_molecule(torch.ones_like(raw), molecule, num_molecules)
        charges = raw - (_per_molecule(raw, molecule, num_molecules) / count)[molecule]
        out = {"charges": charges}
        if "dipole" in self.heads:
            local = charges.unsqueeze(-1) * r + self.heads["dipole"](x, r)
            out["dipole"] = _per_molecule(local, molecule, num_molecules)
        if "quadrupole" in self.heads:
            local = charges.unsqueeze(-1) * quadrupole_components(r) + \
                self.heads["quadrupole"](x, r)
            out["quadrupole"] = _per_molecule(local, molecule, num_molecules)
        return {t: out[t] for t in self.targets}
