"""An ASE calculator of a trained run: ``atoms.calc = IrrepscopeCalculator("runs/demo_l012")``.

ASE's conventions: ``energy`` and ``free_energy`` in eV (equal: the model has no electronic
temperature), ``forces`` in eV/Å (-dE/dpos), ``energies`` per atom in eV (summing to the
energy). Molecules only: periodic ``Atoms`` are refused, as the model has no periodic images.
Every call validates the structure and builds its graph as ``irrepscope predict`` does; on a
bond-graph run the bonds are perceived anew for every structure, so the energy jumps when a
bond crosses the perception threshold during dynamics (see ``irrepscope.predict``): use a
radius-graph run for molecular dynamics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ase.calculators.calculator import Calculator, all_changes

from irrepscope.errors import DataError
from irrepscope.predict import Predictor, raw_from_atoms


class IrrepscopeCalculator(Calculator):
    """ASE calculator over a ``Predictor``: from a run directory (``checkpoint`` "best",
    "last" or a path) or from a ready ``predictor`` (e.g. a model built in memory)."""

    implemented_properties = ["energy", "free_energy", "forces", "energies"]

    def __init__(self, run_dir: str | Path | None = None, checkpoint: str | Path = "best",
                 predictor: Predictor | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if (run_dir is None) == (predictor is None):
            raise ValueError("give exactly one of run_dir and predictor")
        self.predictor = predictor or Predictor.from_run(run_dir, checkpoint)

    def calculate(self, atoms: Any = None, properties: Any = ("energy",),
                  system_changes: Any = all_changes) -> None:
        """Energy, free energy, forces and per-atom energies of ``atoms`` (all in one pass)."""
        super().calculate(atoms, properties, system_changes)
        if self.atoms.pbc.any():
            raise DataError(f"{self.atoms.get_chemical_formula()}: periodic boundary conditions "
                            f"(pbc={self.atoms.pbc.tolist()}) are not supported; the model "
                            f"treats molecules in vacuum (set atoms.pbc = False)")
        prediction = self.predictor.predict(raw_from_atoms([self.atoms]), forces=True,
                                            atom_energies=True, progress=False,
                                            source=self.atoms.get_chemical_formula())
        energy = float(prediction.energy[0])
        self.results = {"energy": energy, "free_energy": energy,
                        "forces": prediction.forces, "energies": prediction.atom_energies}
