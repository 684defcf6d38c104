"""The EdgeMessage interface, its e3nn implementation and the factory."""

from __future__ import annotations

import pytest
import torch
from e3nn import o3

from irrepscope.errors import ConfigError
from irrepscope.model.dtype import default_dtype
from irrepscope.model.message import E3nnEdgeMessage, EdgeMessage, tensor_product_paths
from irrepscope.model.message_steps import make_edge_message
from irrepscope.testing import assert_equivariant

IN, SH, OUT = o3.Irreps("3x0e+2x1o+2x2e"), o3.Irreps("1x0e+1x1o+1x2e"), o3.Irreps("2x0e+2x1o+2x2e")


def _message(dtype=torch.float64):
    with default_dtype(dtype):
        torch.manual_seed(0)
        return E3nnEdgeMessage(IN, SH, OUT, num_basis=6, radial_hidden=5)


def test_paths_follow_e3nn_instruction_order_and_weight_count():
    paths = tensor_product_paths(IN, SH, OUT)
    tp = o3.FullyConnectedTensorProduct(IN, SH, OUT, shared_weights=False, internal_weights=False)
    assert [(p.i_in, p.i_sh, p.i_out) for p in paths] == [
        (i.i_in1, i.i_in2, i.i_out) for i in tp.instructions]
    assert sum(p.num_weights for p in paths) == tp.weight_numel
    # the reference model's input block: 64x0e x (0e+1o+2e) -> 32x(0e+1o+2e): 3 paths, 6144 weights
    first = tensor_product_paths("64x0e", "1x0e+1x1o+1x2e", "32x0e+32x1o+32x2e")
    assert len(first) == 3 and sum(p.num_weights for p in first) == 6144


def test_e3nn_message_shapes_parameters_and_equivariance():
    message = _message()
    assert isinstance(message, EdgeMessage)
    assert [n for n, _ in message.named_parameters()] == ["radial.weight_in", "radial.weight_out"]
    assert list(message.state_dict()) == ["radial.weight_in", "radial.weight_out"]
    assert message.radial.weight_out.shape == (5, message.weight_numel)
    radial = torch.rand(11, 6, dtype=torch.float64)
    joint = IN + SH
    out = message(torch.randn(11, IN.dim, dtype=torch.float64),
                  torch.randn(11, SH.dim, dtype=torch.float64), radial)
    assert out.shape == (11, OUT.dim)

    def fn(x):
        return message(x[:, :IN.dim], x[:, IN.dim:], radial)

    assert_equivariant(fn, joint, OUT, torch.randn(11, joint.dim, dtype=torch.float64))


def test_e3nn_message_is_the_tensor_product_with_mlp_weights():
    message = _message()
    x, sh = torch.randn(4, IN.dim, dtype=torch.float64), torch.randn(4, SH.dim, dtype=torch.float64)
    radial = torch.rand(4, 6, dtype=torch.float64)
    torch.testing.assert_close(message(x, sh, radial), message.tp(x, sh, message.radial(radial)))


def test_factory_builds_e3nn_and_rejects_unknown_kinds():
    message = make_edge_message("e3nn", IN, SH, OUT, 6, 5)
    assert isinstance(message, E3nnEdgeMessage)
    with pytest.raises(ConfigError, match="e3nn, fused, cueq, aggregate"):
        make_edge_message("cuda", IN, SH, OUT, 6, 5)


def test_factory_builds_fused():
    message = make_edge_message("fused", IN, SH, OUT, 6, 5)
    assert isinstance(message, EdgeMessage)
    assert sum(p.numel() for p in message.parameters()) == 6 * 5 + 5 * message.weight_numel


def test_unreachable_output_irreps_are_a_config_error():
    with pytest.raises(ConfigError, match="no tensor-product path reaches"):
        E3nnEdgeMessage("4x0e", "1x0e+1x2e", "4x0e+4x1o", 6, 5)


def test_message_steps_import_one_way():
    """The registry knows every implementation; implementations never import the registry, and
    imports among them go one way (message <- tensor_product <- aggregate, message <- cueq)."""
    import ast
    from pathlib import Path

    import irrepscope.model as package

    root = Path(package.__file__).parent
    allowed = {"message": set(), "tensor_product": {"message"}, "cueq_message": {"message"},
               "aggregate": {"tensor_product"}}
    steps = set(allowed) | {"message_steps"}
    for name, ok in allowed.items():
        tree = ast.parse((root / f"{name}.py").read_text())
        imported = {node.module.rsplit(".", 1)[-1] for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.module
                    and node.module.startswith("irrepscope.model.")}
        assert imported & steps <= ok, f"{name} imports {imported & steps - ok}"
