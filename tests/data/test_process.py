"""The whole of QM9 through the pipeline (about 30 s on two cores)."""

from __future__ import annotations

import numpy as np

from irrepscope.data import load_dataset
from irrepscope.data.qm9 import LABEL_MEAN_EV, LABEL_STD_EV, QM9_NUM_MOLECULES

# Molecules whose geometry bonds differ from their SMILES graph (docs/data.md).
QM9_BOND_DISAGREEMENTS = 6811


def test_full_qm9_processing(tmp_path):
    ds = load_dataset(graph="bonds", data_dir=tmp_path, progress=False)
    assert len(ds) == QM9_NUM_MOLECULES and not ds.metadata["skipped"]
    y = ds.y.double().numpy()
    assert abs(y.mean() - LABEL_MEAN_EV) < 5e-4 and abs(y.std(ddof=1) - LABEL_STD_EV) < 1e-4
    assert len(ds.metadata["bond_disagreements"]) == QM9_BOND_DISAGREEMENTS
    assert ds.num_atoms.max() == 29 and np.all(ds.num_edges > 0)
    radius = load_dataset(graph="radius", data_dir=tmp_path, progress=False)
    assert radius.num_edges.sum() == 39_856_494
    assert radius[QM9_NUM_MOLECULES - 1].edge_index.shape[1] == radius.num_edges[-1]
