"""Figures are written, handle unused panels and grey NSPS; helpers pick the right molecules."""

from __future__ import annotations

import numpy as np
from matplotlib.image import imread

from irrepscope.analysis import figures
from irrepscope.analysis.projection import Projection


def _panels(n: int) -> dict:
    rng = np.random.default_rng(0)
    out = {}
    for view in figures.VIEWS:
        for key in figures.panel_keys([0, 1, 2]):
            out[(view, key)] = (Projection(key, None, "unused", "unused irrep") if key == "l=2"
                                else Projection(key, rng.normal(size=(n, 2)), "ok"))
    return out


def test_projection_grid(tmp_path) -> None:
    nsps = np.linspace(0, 20, 30)
    nsps[:4] = np.nan
    path = figures.figure_projections(_panels(30), figures.panel_keys([0, 1, 2]), nsps,
                                      tmp_path / "p.png", "demo")
    image = imread(path)
    assert image.shape[0] > 200 and image.shape[1] > 1.4 * image.shape[0]  # 2 rows x 4 panels


def test_quadrant_extremes_pick_the_farthest_per_quadrant() -> None:
    coords = np.array([[0.0, 0.0], [10.0, 10.0], [0.0, 10.0], [10.0, 0.0], [5.0, 5.0],
                       [9.0, 9.5], [4.0, 6.0], [6.0, 4.0], [7.0, 7.0]])
    assert figures.quadrant_extremes(coords) == [1, 2, 0, 3]
    # a branch tip that is not at a bounding-box corner is still picked in its quadrant
    branch = np.array([[5.0, 5.0], [5.2, 5.1], [4.9, 5.3], [4.8, 4.7], [5.3, 4.6], [5.1, 9.0],
                       [0.0, 5.6], [2.0, 0.0], [10.0, 4.9]])
    assert figures.quadrant_extremes(branch) == [5, 6, 7, 8]


def test_extremes_and_paths_and_curves(tmp_path) -> None:
    smiles = ["C", "CCO", "c1ccccc1", "CC(C)(C)O", "bad smiles", "C1CC1"] * 5
    proj = Projection("l=0", np.random.default_rng(1).normal(size=(30, 2)), "ok")
    nsps = np.arange(30.0)
    assert figures.figure_extremes(proj, smiles, nsps, tmp_path / "e.png").exists()
    assert figures.figure_tensor_product_paths([0, 3, 4], tmp_path / "tp.png").exists()
    csv = tmp_path / "metrics.csv"
    csv.write_text("epoch,train_mse,train_mae,val_mse,val_mae\n0,2.0,1.1,3.0,1.4\n"
                   "1,1.0,0.8,,\n")
    assert figures.figure_learning_curve(csv, tmp_path / "lc.png").exists()
    assert figures.figure_learning_curve(csv, tmp_path / "lc_base.png",
                                         baseline={"mse": 1.2, "mae": None}).exists()
    assert (tmp_path / "lc.png").read_bytes() != (tmp_path / "lc_base.png").read_bytes()
    rows = [{"l": 0, "variance_share": 0.9, "ablation_rel_mse": 50.0},
            {"l": 1, "variance_share": 0.1, "ablation_rel_mse": float("nan")}]
    assert figures.figure_utilization(rows, tmp_path / "u.png").exists()


def test_tensor_product_table_respects_parity() -> None:
    table = figures.tensor_product_table([0, 1, 2], [0, 1, 2])
    assert table[(0, 1)] == [1] and table[(1, 1)] == [0, 2]  # 1o x 1o -> 1o is parity-forbidden
    assert table[(2, 2)] == [0, 2] and table[(1, 0)] == [1]
    assert figures.tensor_product_table([0, 3], [0]) == {(0, 0): [0], (0, 3): [3]}
