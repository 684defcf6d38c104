"""Pruning a trained run: drop orders, keep every remaining weight, fine-tune, report the cost.

``prune_run`` is the workflow behind `irrepscope prune`; the weight copy itself is
``irrepscope.model.prune``.
"""

from irrepscope.pruning.workflow import prune_run

__all__ = ["prune_run"]
