"""The explorer's data: compact drawings, the compressed store, heavy atoms, shared sources."""

from __future__ import annotations

import base64
import gzip
import xml.etree.ElementTree as ET

import numpy as np

from irrepscope.analysis import explorer as ex
from irrepscope.analysis.projection import Projection


def test_drawings_are_valid_svg_bodies_and_the_store_unpacks() -> None:
    smiles = ["CCO", "", "not a molecule", "c1ccccc1C#N"]
    bodies = ex.drawings(smiles)
    assert bodies[1] == bodies[2] == ""  # no SMILES / unparsable: no drawing
    for body in (bodies[0], bodies[3]):
        assert "class=" not in body and "<?xml" not in body and "<svg" not in body
        root = ET.fromstring(f"<svg xmlns='http://www.w3.org/2000/svg'>{body}</svg>")
        assert root.findall("{http://www.w3.org/2000/svg}path")  # bonds are there
    assert ">O<" in bodies[0] and ">N<" in bodies[3]  # atom labels stay text
    unpacked = gzip.decompress(base64.b64decode(ex.drawing_store(smiles))).decode().split("\0")
    assert unpacked == bodies


def test_heavy_atoms_and_molecule_groups() -> None:
    counts = ex.heavy_atoms(["C", "CCO", "", "xx"])
    assert counts[:2].tolist() == [1, 3] and np.isnan(counts[2:]).all()
    ids = [np.arange(5), np.arange(5), np.arange(1, 6), np.arange(5)]
    assert ex.same_molecules(ids) == [[0, 1, 3], [2]]


def test_explorer_marks_panels_without_projection() -> None:
    n = 12
    molecules = ex.Molecules(["C"] * n, np.zeros(n), np.full(n, np.nan), np.ones(n),
                             np.arange(n))
    coords = np.random.default_rng(0).normal(size=(n, 2))
    panels = {("raw", "joint"): Projection("a", coords, "ok"),
              ("raw", "l=0"): Projection("b", None, "unused"),
              ("invariant", "joint"): Projection("c", coords, "ok")}
    fragment = ex.explorer(molecules, [ex.RunPanels("", panels, ["joint", "l=0"])])
    assert fragment.points == n and fragment.html.count('class="explorer-panels"') == 2
    assert "unused irrep (constant features)" in fragment.script  # the panel says why
    assert "missing" in fragment.script  # invariant l=0 was not given at all
    assert "No predictions: error is n/a." in fragment.script
