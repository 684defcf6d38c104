"""Order-set bookkeeping: offsets, widths, irreps strings."""

from __future__ import annotations

from e3nn import o3

from irrepscope.sph.orders import irreps_string, parse_orders


def test_offsets_widths_and_irreps() -> None:
    s = parse_orders([0, 3, 4, 5, 6])
    assert s.widths == (1, 7, 9, 11, 13) and s.offsets == (0, 1, 8, 17, 28) and s.dim == 41
    assert s.irreps == "1x0e+1x3o+1x4e+1x5o+1x6e" and o3.Irreps(s.irreps).dim == 41
    assert s.slice(4) == slice(8, 17)
    assert parse_orders(2).orders == (0, 1, 2)
    assert irreps_string([10]) == "1x10e"
