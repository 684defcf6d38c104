"""Order sets L: validation, and where each order's 2l+1 columns sit in the output."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral

MAX_L = 10


@dataclass(frozen=True)
class OrderSet:
    """Distinct orders in output order; ``offsets[i]``..+``widths[i]`` are order ``orders[i]``."""

    orders: tuple[int, ...]
    offsets: tuple[int, ...]
    widths: tuple[int, ...]

    @property
    def dim(self) -> int:
        """Output width sum(2l+1)."""
        return sum(self.widths)

    @property
    def irreps(self) -> str:
        """The e3nn Irreps string, parity (-1)^l: e.g. '1x0e+1x3o+1x4e'."""
        return "+".join(f"1x{l}{'e' if l % 2 == 0 else 'o'}" for l in self.orders)

    def slice(self, l: int) -> slice:
        """Columns of order ``l`` in the output."""
        i = self.orders.index(l)
        return slice(self.offsets[i], self.offsets[i] + self.widths[i])


def parse_orders(ls: int | Sequence[int]) -> OrderSet:
    """``ls``: an int l_max (0..l_max) or a sequence of distinct orders in 0..10 (order kept)."""
    if isinstance(ls, bool) or not isinstance(ls, Integral | Sequence) or isinstance(ls, str):
        raise TypeError(f"ls must be an int l_max or a sequence of ints, got {type(ls).__name__}")
    if isinstance(ls, Integral):
        if not 0 <= int(ls) <= MAX_L:
            raise ValueError(f"l_max must be in 0..{MAX_L}, got {int(ls)}")
        orders = tuple(range(int(ls) + 1))
    else:
        if any(isinstance(l, bool) or not isinstance(l, Integral) for l in ls):
            raise TypeError(f"orders must be ints, got {list(ls)!r}")
        orders = tuple(int(l) for l in ls)
        if not orders:
            raise ValueError("the order set is empty")
        bad = [l for l in orders if not 0 <= l <= MAX_L]
        if bad:
            raise ValueError(f"orders must be in 0..{MAX_L}, got {bad} in {list(orders)}")
        if len(set(orders)) != len(orders):
            raise ValueError(f"orders must be distinct, got {list(orders)}")
    widths = tuple(2 * l + 1 for l in orders)
    offsets = tuple(sum(widths[:i]) for i in range(len(orders)))
    return OrderSet(orders, offsets, widths)


def irreps_string(ls: int | Sequence[int]) -> str:
    """e3nn Irreps string of an order set, e.g. [0, 3, 4] -> '1x0e+1x3o+1x4e'."""
    return parse_orders(ls).irreps
