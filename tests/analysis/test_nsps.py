"""NSPS from SMILES equals RDKit's SpacialScore; unscorable molecules are NaN and counted."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import SpacialScore

from irrepscope.analysis.nsps import nsps, nsps_scores

SMILES = ["CC(C)(C)O", "c1ccccc1", "C[C@H](O)CC", "OC1CC2CC1C2", "N#CC=O", "FC(F)(F)C1CC1"]


@pytest.mark.parametrize("smiles", SMILES)
def test_matches_rdkit(smiles: str) -> None:
    expected = SpacialScore.SPS(Chem.MolFromSmiles(smiles), normalize=True)
    assert nsps(smiles) == pytest.approx(expected, abs=1e-12)


def test_methane_is_zero() -> None:
    assert nsps("C") == 0.0


def test_explicit_hydrogens_do_not_change_the_score() -> None:
    # the score is defined on the hydrogen-implicit molecule; an H-explicit SMILES must agree
    assert nsps("[H]C([H])([H])C([H])([H])O[H]") == nsps("CCO")
    assert nsps("[H]C1([H])C([H])([H])C1([H])[H]") == nsps("C1CC1")


def test_unscorable_are_nan_and_counted() -> None:
    scores = nsps_scores(["CCO", "not a smiles", "[H][H]", "", "C"], progress=False)
    assert scores.num_unscorable == 3
    assert [i for i, _, _ in scores.unscorable] == [1, 2, 3]
    assert np.isnan(scores.values[[1, 2, 3]]).all()
    assert scores.values[0] == nsps("CCO") and scores.values[4] == 0.0
    assert all(reason for _, _, reason in scores.unscorable)
    assert math.isnan(nsps("C1CC"))  # unclosed ring: RDKit cannot parse it
