"""Energy references: how the model's normalized output becomes an energy in eV.

Two kinds (``model.energy_reference``):

- ``global_mean_std`` (the paper's Table 2): ``E = out * label_std + label_mean``, both taken
  from the config; no state beyond the config.
- ``element_least_squares``: ``E = out * residual_std + sum_atoms e_Z``. The per-element
  energies ``e_Z`` (eV) are the least-squares fit of the energy on the element counts of the
  training molecules (no intercept), ``residual_std`` is the standard deviation of that fit's
  residual on the same molecules. Both are buffers, so a checkpoint reproduces its energies
  without the data set. (nequip calls these per-type energy shifts, MACE ``E0s``.)

``fit_element_energies`` is also the composition baseline every run reports
(``irrepscope.train.baseline``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from irrepscope.errors import DataError
from irrepscope.model.config import ENERGY_REFERENCES

__all__ = ["ENERGY_REFERENCES", "ElementFit", "EnergyReference", "element_counts",
           "fit_element_energies"]
# A fit whose residual is (numerically) zero still needs a positive unit for the loss.
MIN_RESIDUAL_STD = 1e-3  # eV
_SYMBOLS = {1: "H", 5: "B", 6: "C", 7: "N", 8: "O", 9: "F", 14: "Si", 15: "P", 16: "S",
            17: "Cl", 35: "Br", 53: "I"}


def element_name(z: int) -> str:
    """'C (Z=6)' for atomic number 6."""
    return f"{_SYMBOLS.get(int(z), 'element')} (Z={int(z)})"


def element_counts(z: Sequence[int] | np.ndarray, num_atoms: Sequence[int] | np.ndarray,
                   num_elements: int) -> np.ndarray:
    """Counts of each atomic number per molecule: float64 [molecules, num_elements].

    ``z`` [total atoms] lists the atoms molecule after molecule, ``num_atoms`` [molecules].
    """
    z = np.asarray(z, dtype=np.int64)
    num_atoms = np.asarray(num_atoms, dtype=np.int64)
    molecule = np.repeat(np.arange(len(num_atoms)), num_atoms)
    counts = np.zeros((len(num_atoms), num_elements), dtype=np.float64)
    np.add.at(counts, (molecule, z), 1.0)
    return counts


@dataclass
class ElementFit:
    """Least-squares element energies: ``energies`` [num_elements] eV (0 for elements absent
    from the fit's molecules, marked False in ``present``), residual mean/std (eV), and the
    number of molecules fitted."""

    energies: np.ndarray
    present: np.ndarray
    residual_mean: float
    residual_std: float
    num_molecules: int

    def predict(self, counts: np.ndarray) -> np.ndarray:
        """Reference energies (eV) [molecules] of element counts [molecules, num_elements]."""
        return np.asarray(counts, dtype=np.float64) @ self.energies

    def unseen(self, counts: np.ndarray) -> np.ndarray:
        """Boolean [molecules]: molecules with an element absent from the fit's molecules."""
        return (np.asarray(counts)[:, ~self.present] > 0).any(axis=1)


def fit_element_energies(counts: np.ndarray, energies: np.ndarray,
                         what: str = "the training split") -> ElementFit:
    """Least-squares ``energies ~ counts @ e`` (no intercept) on ``what``'s molecules.

    counts [M, num_elements], energies [M] eV. Raises ``DataError`` for non-finite energies,
    fewer molecules than elements, or element counts that cannot separate the elements.
    """
    counts = np.asarray(counts, dtype=np.float64)
    energies = np.asarray(energies, dtype=np.float64).reshape(-1)
    bad = np.flatnonzero(~np.isfinite(energies))
    if bad.size:
        raise DataError(f"{bad.size} of the {energies.size} energies in {what} are NaN or "
                        f"infinite (first at position {int(bad[0])} of the split); fix or drop "
                        f"those molecules before training")
    present = counts.sum(axis=0) > 0
    elements = np.flatnonzero(present)
    names = ", ".join(element_name(z) for z in elements)
    fix = ("use more molecules (a larger data.subset or train fraction) or "
           "model.energy_reference: global_mean_std")
    if energies.size < elements.size:
        raise DataError(f"the element-reference fit has only {energies.size} molecule(s) in "
                        f"{what}, fewer than its {elements.size} elements ({names}); {fix}")
    matrix = counts[:, present]
    coef, _, rank, _ = np.linalg.lstsq(matrix, energies, rcond=None)
    if rank < elements.size:
        raise DataError(f"the element counts of the {energies.size} molecules in {what} are "
                        f"linearly dependent (rank {rank} for {elements.size} elements: "
                        f"{names}), so the element energies are not determined; {fix}")
    full = np.zeros(counts.shape[1], dtype=np.float64)
    full[present] = coef
    residual = energies - matrix @ coef
    return ElementFit(full, present, float(residual.mean()),
                      float(residual.std()), int(energies.size))


class EnergyReference(nn.Module):
    """normalized output [B] <-> energy [B] eV, per ``model.energy_reference``.

    For ``element_least_squares`` the buffers ``element_energy`` [num_elements] (eV) and
    ``energy_scale`` [] (eV) are set by ``set_fit`` before training and restored from
    checkpoints; using the model before either raises ``RuntimeError``.
    """

    def __init__(self, kind: str, num_elements: int, label_mean: float,
                 label_std: float) -> None:
        super().__init__()
        self.kind = kind
        self.label_mean, self.label_std = float(label_mean), float(label_std)
        self.per_element = kind == "element_least_squares"
        self.fitted = not self.per_element
        self.scale = self.label_std  # eV per normalized unit, as a Python float (no sync)
        if self.per_element:
            self.register_buffer("element_energy", torch.zeros(num_elements))
            self.register_buffer("energy_scale", torch.zeros(()))
            self.register_load_state_dict_post_hook(_after_load)

    def set_fit(self, fit: ElementFit) -> None:
        """Take the element energies and residual std of ``fit`` (element_least_squares)."""
        if not self.per_element:
            raise RuntimeError("set_fit needs model.energy_reference: element_least_squares")
        energies = torch.as_tensor(fit.energies, dtype=self.element_energy.dtype)
        self.element_energy.copy_(energies.to(self.element_energy.device))
        self.energy_scale.fill_(max(fit.residual_std, MIN_RESIDUAL_STD))
        self._sync()

    def _sync(self) -> None:
        self.scale = float(self.energy_scale)
        self.fitted = self.scale > 0

    def _check(self) -> None:
        if not self.fitted:
            raise RuntimeError("model.energy_reference is element_least_squares but the element "
                               "energies were never fitted: train the model (they are fitted on "
                               "the training split) or load a trained checkpoint")

    def offset(self, z: torch.Tensor, molecule: torch.Tensor, num_molecules: int,
               dtype: torch.dtype) -> torch.Tensor:
        """Reference energy (eV) [num_molecules] of each molecule."""
        if not self.per_element:
            return torch.full((num_molecules,), self.label_mean, dtype=dtype, device=z.device)
        per_atom = self.element_energy.to(dtype)[z]
        return torch.zeros(num_molecules, dtype=dtype, device=z.device).index_add(
            0, molecule, per_atom)

    def to_energy(self, out: torch.Tensor, z: torch.Tensor, molecule: torch.Tensor
                  ) -> torch.Tensor:
        """Energies (eV) [B] from normalized outputs [B]."""
        self._check()
        return out * self.scale + self.offset(z, molecule, out.shape[0], out.dtype)

    def normalize(self, energy: torch.Tensor, z: torch.Tensor, molecule: torch.Tensor
                  ) -> torch.Tensor:
        """Normalized targets [B] from energies (eV) [B]."""
        self._check()
        return (energy - self.offset(z, molecule, energy.shape[0], energy.dtype)) / self.scale


def _after_load(module: nn.Module, incompatible: object) -> None:
    module._sync()
