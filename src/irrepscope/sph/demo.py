"""``irrepscope sph demo``: a few order sets, checked against e3nn and the 50-digit oracle."""

from __future__ import annotations

import torch

from irrepscope.sph.api import spherical_harmonics
from irrepscope.sph.oracle import oracle
from irrepscope.sph.orders import parse_orders


def run_sph_demo(num_vectors: int = 256, seed: int = 0) -> list[dict[str, object]]:
    """Print and return, per order set, its irreps, width and max |error| vs e3nn and oracle."""
    from e3nn import o3

    v = torch.randn(num_vectors, 3, generator=torch.Generator().manual_seed(seed),
                    dtype=torch.float64)
    rows = []
    for ls in ([0, 1, 2], list(range(7)), [0, 3, 4, 5, 6], [10], list(range(11))):
        s = parse_orders(ls)
        ours = spherical_harmonics(ls, v)
        e3nn_err = (ours - o3.spherical_harmonics(ls, v, True)).abs().max().item()
        top = max(ls)
        oracle_err = (spherical_harmonics([top], v[:16], True, "component")
                      - oracle(top, v[:16])).abs().max().item()
        rows.append({"orders": ls, "irreps": s.irreps, "dim": s.dim,
                     "max_err_vs_e3nn": e3nn_err, f"max_err_l{top}_vs_oracle": oracle_err})
        print(f"L={ls}: {s.irreps} (dim {s.dim}); float64 max |err| vs e3nn {e3nn_err:.1e}, "
              f"l={top} vs 50-digit oracle {oracle_err:.1e}")
    return rows
