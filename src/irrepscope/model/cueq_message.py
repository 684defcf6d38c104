"""Message step on NVIDIA's cuequivariance-torch (``model.tensor_product: cueq``).

``CueqEdgeMessage`` computes the function of ``E3nnEdgeMessage`` with the same parameters in the
same layout (``radial.weight_in``, ``radial.weight_out``: checkpoints load unchanged in either
build). The tensor product is cuequivariance's ``FullyConnectedTensorProduct`` ('component'
irreps, 'element' paths, e3nn's ``mul_ir`` layout and weight order: e3nn's defaults). On CUDA
tensors, with the kernel package ``cuequivariance-ops-torch-cu12`` installed, it runs NVIDIA's
fused kernel (``method='fused_tp'``); otherwise (CPU, or no kernels) its PyTorch
implementation (``method='naive'``), which is what the CPU tests check against e3nn.
"""

from __future__ import annotations

import importlib.util

import torch
from e3nn import o3

from irrepscope.errors import ConfigError
from irrepscope.model.message import EdgeMessage, constants_out_of_state_dict
from irrepscope.model.radial import RadialMLP

INSTALL_HINT = ("pip install cuequivariance-torch (and, for its CUDA kernels, "
                "cuequivariance-ops-torch-cu12), or choose model.tensor_product: fused")


def cueq_kernels_available() -> bool:
    """Whether cuequivariance's CUDA kernels can run here (kernel package and a CUDA device)."""
    return (torch.cuda.is_available()
            and importlib.util.find_spec("cuequivariance_ops_torch") is not None)


def require_cuequivariance() -> None:
    """Raise a ConfigError saying what to install when cuequivariance-torch is missing."""
    if importlib.util.find_spec("cuequivariance_torch") is None:
        raise ConfigError(f"model.tensor_product 'cueq' needs cuequivariance-torch, which is "
                          f"not installed: {INSTALL_HINT}")


def _fully_connected_tp(irreps_in: o3.Irreps, irreps_sh: o3.Irreps, irreps_out: o3.Irreps,
                        method: str) -> torch.nn.Module:
    """cuequivariance's fully connected TP with per-edge weights, in e3nn's layout."""
    require_cuequivariance()
    import cuequivariance as cue
    import cuequivariance_torch as cuet

    def group(irreps: o3.Irreps):
        return cue.Irreps("O3", str(irreps))

    return cuet.FullyConnectedTensorProduct(
        group(irreps_in), group(irreps_sh), group(irreps_out), layout=cue.mul_ir,
        shared_weights=False, internal_weights=False, method=method,
        dtype=torch.get_default_dtype())


class CueqEdgeMessage(EdgeMessage):
    """Radial MLP [num_basis -> radial_hidden -> weight_numel] + cuequivariance's full TP.

    ``self.tp`` (PyTorch implementation) serves CPU tensors; ``self.tp_kernel`` (CUDA kernel,
    None without the kernel package or a GPU) serves CUDA tensors.
    """

    def __init__(self, irreps_in: o3.Irreps | str, irreps_sh: o3.Irreps | str,
                 irreps_out: o3.Irreps | str, num_basis: int, radial_hidden: int) -> None:
        super().__init__(irreps_in, irreps_sh, irreps_out, num_basis, radial_hidden)
        self.tp = _fully_connected_tp(self.irreps_in, self.irreps_sh, self.irreps_out, "naive")
        self.tp_kernel = (_fully_connected_tp(self.irreps_in, self.irreps_sh, self.irreps_out,
                                              "fused_tp") if cueq_kernels_available() else None)
        if self.tp.weight_numel != self.weight_numel:  # a path rule differing from e3nn's
            raise RuntimeError(f"cuequivariance reports {self.tp.weight_numel} weights, expected "
                               f"{self.weight_numel} (e3nn's fully connected paths)")
        self.radial = RadialMLP(num_basis, radial_hidden, self.weight_numel)
        for tp in (self.tp, self.tp_kernel):  # checkpoints: E3nnEdgeMessage's two weights only
            if tp is not None:
                constants_out_of_state_dict(tp)

    def forward(self, node_src: torch.Tensor, sh: torch.Tensor, radial_basis: torch.Tensor,
                edge_operand: torch.Tensor | None = None) -> torch.Tensor:
        """[E, irreps_in.dim], [E, irreps_sh.dim], [E, num_basis] -> [E, irreps_out.dim]."""
        tp = self.tp_kernel if node_src.is_cuda and self.tp_kernel is not None else self.tp
        return tp(node_src, sh, self.radial(radial_basis))
