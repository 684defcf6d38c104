"""The composition baseline and element-reference fit of a run: train split only, bad input."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from irrepscope.data.splits import Split
from irrepscope.errors import DataError
from irrepscope.train import datamodule
from irrepscope.train.baseline import (
    check_unseen_elements,
    composition_baseline,
    format_run_summary,
)
from irrepscope.train.run import load_run_dataset, load_run_split, train

REFERENCES = ("model.energy_reference=element_least_squares", "model.readout_init=zero")


def _molecules(seed: int = 0, count: int = 30, elements=(1, 6, 7, 8)) -> list[Data]:
    g = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        z = torch.as_tensor(g.choice(elements, size=int(g.integers(2, 9))))
        out.append(Data(z=z, y=torch.tensor([float(-5.0 * z.sum() + g.normal())])))
    return out


def _split(n: int) -> Split:
    order = np.random.default_rng(1).permutation(n)
    cut = int(0.6 * n), int(0.8 * n)
    return Split(order[:cut[0]], order[cut[0]:cut[1]], order[cut[1]:], 0, (0.6, 0.2, 0.2))


def _independent_fit(molecules, indices) -> np.ndarray:
    """Least squares of y on H/C/N/O counts, written without irrepscope."""
    rows = [[int((molecules[i].z == e).sum()) for e in (1, 6, 7, 8)] for i in indices]
    y = [float(molecules[i].y) for i in indices]
    return np.linalg.lstsq(np.array(rows, float), np.array(y), rcond=None)[0]


def test_fit_uses_only_training_labels_and_matches_least_squares() -> None:
    molecules = _molecules()
    split = _split(len(molecules))
    fit, summary = composition_baseline(molecules, split, num_elements=10)
    np.testing.assert_allclose(fit.energies[[1, 6, 7, 8]],
                               _independent_fit(molecules, split.train), rtol=1e-9)
    changed = copy.deepcopy(molecules)
    for i in np.concatenate([split.val, split.test]):
        changed[i].y = changed[i].y + 100.0
    fit2, summary2 = composition_baseline(changed, split, num_elements=10)
    np.testing.assert_array_equal(fit.energies, fit2.energies)
    assert fit.residual_std == fit2.residual_std and summary["train_mse"] == summary2["train_mse"]
    assert summary2["test_mse"] > summary["test_mse"] + 1000  # the changed labels were scored
    coef = _independent_fit(molecules, split.train)
    err = [sum(coef[k] * int((molecules[i].z == e).sum()) for k, e in enumerate((1, 6, 7, 8)))
           - float(molecules[i].y) for i in split.test]
    assert summary["test_mse"] == pytest.approx(np.mean(np.square(err)), rel=1e-9)
    assert summary["test_mae"] == pytest.approx(np.mean(np.abs(err)), rel=1e-9)


def test_elements_missing_from_training() -> None:
    molecules = _molecules()
    split = _split(len(molecules))
    molecules[int(split.test[0])].z[0] = 9  # one fluorine, in a test molecule only
    fit, summary = composition_baseline(molecules, split, num_elements=10)
    assert summary["unseen_element_molecules"] == {"val": 0, "test": 1}
    with pytest.raises(DataError, match=r"F \(Z=9\) occur in 0 validation and 1 test "
                                        r"molecule\(s\) but in no training molecule.*"
                                        r"global_mean_std"):
        check_unseen_elements(fit, summary, molecules, split, num_elements=10)


def test_non_strict_baseline_records_why_it_is_missing() -> None:
    molecules = _molecules(count=8)
    split = Split(np.arange(2), np.arange(2, 5), np.arange(5, 8), 0, (0.25, 0.375, 0.375))
    _, summary = composition_baseline(molecules, split, num_elements=10)
    assert "fewer than its" in summary["error"] and summary["test_mse"] is None
    with pytest.raises(DataError, match="fewer than its"):
        composition_baseline(molecules, split, num_elements=10, strict=True)


def test_run_fits_references_on_train_and_reports_the_baseline(tiny_config,
                                                               tmp_path: Path) -> None:
    run = train(tiny_config(*REFERENCES, "train.max_epochs=1"), tmp_path / "run")
    baseline = json.loads((run / "baseline.json").read_text())
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert metrics["baseline_test_mse"] == baseline["test_mse"]
    assert metrics["baseline_val_mae"] == baseline["val_mae"]
    dataset, split = load_run_dataset(run, progress=False), load_run_split(run)
    graphs = [dataset[int(i)] for i in range(len(dataset))]
    np.testing.assert_allclose(
        [baseline["element_energies_ev"][n] for n in ("H (Z=1)", "C (Z=6)", "N (Z=7)",
                                                      "O (Z=8)")],
        _independent_fit(graphs, split.train), rtol=1e-9)
    state = torch.load(run / "best.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    energies = state["model.reference.element_energy"]
    for name, value in baseline["element_energies_ev"].items():
        z = int(name.split("=")[1].rstrip(")"))
        assert float(energies[z]) == pytest.approx(value, rel=1e-6)
    assert float(state["model.reference.energy_scale"]) == pytest.approx(
        baseline["residual_std_ev"], rel=1e-6)
    assert "composition baseline" in format_run_summary(metrics)


def _poisoned(monkeypatch: pytest.MonkeyPatch, edit) -> None:
    real = datamodule.cached_dataset

    def fake(config, progress=True):
        dataset = copy.copy(real(config, progress))
        dataset.y = dataset.y.clone()
        edit(dataset)
        return dataset

    monkeypatch.setattr(datamodule, "cached_dataset", fake)


def test_nan_training_energy_stops_before_training(tiny_config, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _poisoned(monkeypatch, lambda d: d.y.__setitem__(slice(None), float("nan")))
    with pytest.raises(DataError, match="energies in the training split are NaN or infinite"):
        train(tiny_config(), tmp_path / "run")
    assert not (tmp_path / "run" / "last.ckpt").exists()


def test_too_few_molecules_for_references_stops_before_training(tiny_config,
                                                                tmp_path: Path) -> None:
    config = tiny_config(*REFERENCES, "data.subset=4", "data.fractions=[0.5, 0.25, 0.25]")
    with pytest.raises(DataError, match=r"only 2 molecule\(s\) in the training split, fewer "
                                        r"than its \d elements"):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run" / "last.ckpt").exists()


def test_model_info_run_refuses_overrides(tmp_path: Path, capsys) -> None:
    from irrepscope.cli import main

    assert main(["model", "info", "--run", str(tmp_path), "--set", "model.hidden=3"]) == 2
    assert "--set only applies to --config" in capsys.readouterr().err
