"""Energy references: the least-squares element fit, the model's reference buffers, bad input."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from irrepscope.errors import ConfigError, DataError
from irrepscope.model import ModelConfig, build_model
from irrepscope.model.references import (
    MIN_RESIDUAL_STD,
    element_counts,
    fit_element_energies,
)
from irrepscope.testing import REFERENCE_MODELS

ELEMENT_ENERGIES = {1: -13.6, 6: -1029.8, 7: -1485.3, 8: -2042.6, 9: -2713.5}  # eV, made up


def _reference_model(**kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    config = ModelConfig(orders=[0, 1], hidden=4, num_layers=1,
                         energy_reference="element_least_squares", **kwargs)
    return build_model(config, dtype=torch.float64)


def _exact_energies(molecules) -> tuple[np.ndarray, np.ndarray]:
    """(counts [M, 100], energies = sum of ELEMENT_ENERGIES over each molecule's atoms)."""
    z = torch.cat([m.z for m in molecules]).numpy()
    counts = element_counts(z, [m.z.numel() for m in molecules], 100)
    table = np.zeros(100)
    for element, energy in ELEMENT_ENERGIES.items():
        table[element] = energy
    return counts, counts @ table


def test_element_counts() -> None:
    counts = element_counts([6, 1, 1, 1, 1, 8, 8], [5, 2], 10)
    assert counts.shape == (2, 10)
    assert counts[0].tolist() == [0, 4, 0, 0, 0, 0, 1, 0, 0, 0]
    assert counts[1].tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 2, 0]


def test_exact_composition_energies_are_fitted_and_predicted(qm9_molecules, make_batch):
    molecules = qm9_molecules + [qm9_molecules[0]]  # a repeat keeps the fit exact
    counts, energies = _exact_energies(molecules)
    fit = fit_element_energies(counts, energies)
    for element in (1, 6, 7, 8):  # QM9_INDICES hold no fluorine
        assert fit.energies[element] == pytest.approx(ELEMENT_ENERGIES[element], abs=1e-6)
    assert not fit.present[9] and fit.energies[9] == 0
    assert fit.residual_std < 1e-6 and fit.num_molecules == 6
    np.testing.assert_allclose(fit.predict(counts), energies, atol=1e-6, rtol=0)

    model = _reference_model(readout_init="zero")  # untrained
    model.reference.set_fit(fit)
    assert model.energy_scale == MIN_RESIDUAL_STD  # a zero residual still gives a unit
    batch = make_batch(molecules)
    torch.testing.assert_close(model(batch), torch.as_tensor(energies), atol=1e-6, rtol=0)
    assert model(batch, normalized=True).abs().max() == 0


def test_normalized_target_matches_the_energy(qm9_molecules, make_batch):
    counts, energies = _exact_energies(qm9_molecules)
    noisy = energies + np.linspace(-1.0, 1.0, len(energies))
    model = _reference_model()
    model.reference.set_fit(fit_element_energies(counts, noisy))
    batch = make_batch(qm9_molecules)
    batch.y = torch.as_tensor(noisy)
    pred, norm = model(batch), model(batch, normalized=True)
    torch.testing.assert_close((norm - model.normalized_target(batch)) * model.energy_scale,
                               pred - batch.y, atol=1e-9, rtol=0)


def test_state_dict_reproduces_energies_without_data(qm9_molecules, make_batch):
    counts, energies = _exact_energies(qm9_molecules)
    model = _reference_model()
    model.reference.set_fit(fit_element_energies(counts, energies + 0.3 * np.arange(5)))
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    fresh = _reference_model()
    with pytest.raises(RuntimeError, match="never fitted"):
        fresh(make_batch(qm9_molecules))
    buffer.seek(0)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    batch = make_batch(qm9_molecules)
    torch.testing.assert_close(fresh(batch), model(batch), atol=0, rtol=0)
    assert fresh.energy_scale == model.energy_scale


def test_paper_reference_adds_no_state():
    """global_mean_std keeps the state_dict (old checkpoints load) and the parameter count."""
    orders, hidden, expected = REFERENCE_MODELS[0]
    torch.manual_seed(0)
    paper = build_model(ModelConfig(orders=orders, hidden=hidden))
    torch.manual_seed(0)
    refs = build_model(ModelConfig(orders=orders, hidden=hidden,
                                   energy_reference="element_least_squares",
                                   readout_init="zero"))
    assert sum(p.numel() for p in paper.parameters()) == expected
    assert sum(p.numel() for p in refs.parameters()) == expected  # buffers are not parameters
    extra = set(refs.state_dict()) - set(paper.state_dict())
    assert extra == {"reference.element_energy", "reference.energy_scale"}
    for name, value in paper.state_dict().items():  # zeroing consumes no random numbers
        if not name.startswith(("readout.", "head.bias")):
            assert torch.equal(value, refs.state_dict()[name]), name
    assert refs.readout.weight.abs().max() == 0 and refs.head.bias.abs().max() == 0


def test_fit_bad_input() -> None:
    counts = element_counts([6, 1, 1, 8, 1, 1, 7, 1, 1, 1], [3, 3, 4], 10)
    with pytest.raises(DataError, match="1 of the 3 energies in the training split are NaN"):
        fit_element_energies(counts, [1.0, np.nan, 2.0])
    with pytest.raises(DataError, match=r"only 3 molecule\(s\).*fewer than its 4 elements "
                                        r"\(H \(Z=1\), C \(Z=6\), N \(Z=7\), O \(Z=8\)\).*"
                                        r"data.subset"):
        fit_element_energies(counts, [1.0, 2.0, 3.0])
    methane = element_counts([6, 1, 1, 1, 1] * 3, [5, 5, 5], 10)
    doubled = np.concatenate([methane, 2 * methane])
    with pytest.raises(DataError, match="linearly dependent"):
        fit_element_energies(doubled, np.arange(6.0))


@pytest.mark.parametrize(("key", "value"), [("energy_reference", "per_element"),
                                            ("readout_init", "zeros")])
def test_config_rejects_unknown_choices(key, value):
    with pytest.raises(ConfigError, match=f"model.{key} must be one of"):
        ModelConfig.from_dict({key: value})
