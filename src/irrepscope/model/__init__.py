"""The equivariant GNN (paper section 2, A.3): config, blocks, model, irreps bookkeeping."""

from irrepscope.model.config import ModelConfig
from irrepscope.model.gnn import EquivariantGNN, ModelOutput, build_model

__all__ = ["EquivariantGNN", "ModelConfig", "ModelOutput", "build_model"]
