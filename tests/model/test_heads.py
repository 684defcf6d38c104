"""Output heads: charges, dipole and quadrupole are equivariant for every order set."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from e3nn import o3

from irrepscope.data.targets import mulliken_dipole, mulliken_quadrupole
from irrepscope.errors import ConfigError
from irrepscope.model.config import ModelConfig
from irrepscope.model.gnn import build_model
from irrepscope.model.heads import AtomHead, TargetHeads, coupling_orders
from irrepscope.model.irreps import hidden_irreps
from irrepscope.testing import assert_outputs_equivariant

ALL = ("energy", "charges", "dipole", "quadrupole")
IRREPS = {"energy": "0e", "charges": "0e", "dipole": "1o", "quadrupole": "2e"}


def _model(orders, targets=ALL):
    torch.manual_seed(0)
    config = ModelConfig(orders=orders, hidden=3, num_layers=0, embedding_dim=8, num_basis=4,
                         sh_backend="torch", tensor_product="e3nn")
    return build_model(config, dtype=torch.float64, targets=targets).eval()


@pytest.mark.parametrize(("orders", "kinds"), [
    ([0, 1, 2], {"charges": "linear", "dipole": "linear", "quadrupole": "linear"}),
    ([0, 3, 4, 5, 6], {"charges": "linear", "dipole": "tensor product with Y^l' l'=[1, 2, 3, 4, 5]",
                       "quadrupole": "tensor product with Y^l' l'=[1, 2, 3, 4]"}),
    ([0, 2, 4], {"charges": "linear", "dipole": "tensor product with Y^l' l'=[1, 3]",
                 "quadrupole": "linear"}),
])
def test_heads_are_equivariant(orders, kinds, qm9_molecules, make_batch, one_thread):
    model = _model(orders)
    assert model.target_heads.describe() == kinds
    batch = make_batch(qm9_molecules[:3])
    assert_outputs_equivariant(lambda b: model.predict(b), batch, IRREPS, per_atom={"charges"},
                               atol=1e-9)
    out = model.predict(batch)
    assert out["dipole"].shape == (3, 3) and out["quadrupole"].shape == (3, 5)
    assert out["dipole"].abs().max() > 1e-3 and out["quadrupole"].abs().max() > 1e-3
    sums = torch.zeros(3, dtype=torch.float64).index_add(0, batch.batch, out["charges"])
    assert sums.abs().max() < 1e-12  # every molecule stays neutral


def test_energy_only_models_are_unchanged():
    plain, with_heads = _model([0, 1, 2], ("energy",)), _model([0, 1, 2])
    assert plain.target_heads is None
    shared = {k: v for k, v in with_heads.state_dict().items() if not k.startswith("target_")}
    assert shared.keys() == plain.state_dict().keys()
    for key, value in plain.state_dict().items():  # heads are drawn after every other weight
        torch.testing.assert_close(shared[key], value, rtol=0, atol=0)


def test_charge_terms_reproduce_the_mulliken_moments(qm9_molecules, make_batch):
    """With exact charges and zero local terms the heads give data.targets' dipole/quadrupole."""
    heads = TargetHeads(hidden_irreps([0, 1, 2], 2), ["dipole", "quadrupole"], 10).double()
    for head in heads.heads.values():
        torch.nn.init.zeros_(head.linear.weight)
    batch = make_batch(qm9_molecules[:2])
    charges = torch.randn(batch.z.shape[0], dtype=torch.float64)
    charges -= torch.zeros(2, dtype=torch.float64).index_add(0, batch.batch, charges)[
        batch.batch] / torch.bincount(batch.batch)[batch.batch]
    heads.heads["charges"] = _Fixed(charges)
    x = torch.zeros(batch.z.shape[0], heads.heads["dipole"].irreps_hidden.dim, dtype=torch.float64)
    out = heads(x, batch.z, batch.pos, batch.batch, 2)
    args = (charges.numpy(), batch.z.numpy(), batch.pos.numpy(), np.bincount(batch.batch.numpy()))
    np.testing.assert_allclose(out["dipole"].detach().numpy(), mulliken_dipole(*args), atol=1e-12)
    np.testing.assert_allclose(out["quadrupole"].detach().numpy(), mulliken_quadrupole(*args),
                               atol=1e-12)


class _Fixed(torch.nn.Module):
    def __init__(self, values: torch.Tensor) -> None:
        super().__init__()
        self.values = values

    def forward(self, x, r):
        return self.values.unsqueeze(-1)


def test_coupling_orders_and_heads_that_cannot_be_built():
    assert coupling_orders(o3.Irreps("2x0e+2x2e+2x4e"), o3.Irrep("1o")) == [1, 3]
    assert coupling_orders(o3.Irreps("1x1e"), o3.Irrep("1o")) == [1]  # parity picks l'=1, not 0
    with pytest.raises(ConfigError, match="dipole head \\(1o\\) cannot be built"):
        AtomHead(o3.Irreps(""), "1o", "dipole")
    with pytest.raises(ConfigError, match="no output head for polarizability"):
        TargetHeads(hidden_irreps([0, 1], 2), ["polarizability"], 10)


def test_model_info_counts_the_heads_of_a_run_config():
    from irrepscope.model.info import format_model_info, model_info
    from irrepscope.train.config import load_config

    config = load_config({"model": {"orders": [0, 2, 4], "hidden": 3, "num_layers": 0},
                          "train": {"targets": {"dipole": 1.0}}})
    info = model_info(config)
    model = build_model(config)
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    assert info["target_heads"]["dipole"] == "tensor product with Y^l' l'=[1, 3]"
    assert "target heads: charges: linear, dipole: tensor product" in format_model_info(info)
    assert model_info(config.model)["parameters"] < info["parameters"]
