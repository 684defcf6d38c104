"""QM9 and user molecules as PyG graphs: parsing, validation, graphs, cache and splits."""

from irrepscope.data.dataset import MoleculeGraphs, load_dataset
from irrepscope.data.splits import Split, load_split, make_split, save_split

__all__ = ["MoleculeGraphs", "Split", "load_dataset", "load_split", "make_split", "save_split"]
