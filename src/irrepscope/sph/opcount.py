"""Arithmetic-operation counts per (l, m): recurrent (order l from l-1) vs direct (paper Figure 3).

Recurrent: each Y_lm is written, as e3nn does, as a linear combination of products Y_{l-1,m'} v_j
(v_j in x, y, z; m' within one of +-m), solved symbolically; its cost is the ops of that one
expression plus every component of every lower order, which it needs first. Direct: the ops of
``symbolic.component_expressions`` (no lower order needed). Counts are sympy ``count_ops``.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import sympy as sp

from irrepscope.sph.symbolic import MAX_L, X, Y, Z, component_expressions, expanded_expressions


@functools.cache
def recurrent_expressions(l: int) -> tuple[sp.Expr, ...]:
    """Y_l,m (m=-l..l) in terms of symbols ``Y{l-1}_{i}`` and x, y, z ('component')."""
    if l == 0:
        return (sp.Integer(1),)
    lower = expanded_expressions(l - 1)
    prev = [sp.Symbol(f"Y{l - 1}_{i}") for i in range(2 * l - 1)]
    out = []
    for m, target in zip(range(-l, l + 1), expanded_expressions(l), strict=True):
        near = {abs(m) - 1, abs(m), abs(m) + 1}
        cand = [(i, v) for i, mp in enumerate(range(-(l - 1), l)) if abs(mp) in near
                for v in (X, Y, Z)]
        coeffs = sp.symbols(f"a0:{len(cand)}")
        residual = sp.expand(sum(c * lower[i] * v for c, (i, v) in zip(coeffs, cand, strict=True))
                             - target)
        eqs = sp.Poly(residual, X, Y, Z).coeffs()
        (solution,) = sp.linsolve(eqs, coeffs)
        free = {c: 0 for c in coeffs}
        expr = sum(sp.nsimplify(s.subs(free)) * prev[i] * v
                   for s, (i, v) in zip(solution, cand, strict=True))
        out.append(expr)
    return tuple(out)


def count_rows() -> list[dict[str, int]]:
    """One row per (l, m): own recurrent ops, cumulative recurrent ops, direct ops."""
    rows, below = [], 0
    for l in range(MAX_L + 1):
        own = [sp.count_ops(e) for e in recurrent_expressions(l)]
        direct = [sp.count_ops(e) for e in component_expressions(l)]
        for m, o, d in zip(range(-l, l + 1), own, direct, strict=True):
            rows.append({"l": l, "m": m, "recurrent_own": int(o),
                         "recurrent": int(o + below), "direct": int(d)})
        below += sum(own)
    return rows


def write_opcount_report(out_dir: Path) -> list[Path]:
    """Write ``opcount.csv`` and ``opcount.png`` (red recurrent, blue direct) into ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = count_rows()
    csv_path = out_dir / "opcount.csv"
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, color, label in (("recurrent", "tab:red", "recurrent (needs all lower l)"),
                              ("direct", "tab:blue", "direct (this work)")):
        ax.scatter([r["l"] + r["m"] / (2.5 * (r["l"] + 1)) for r in rows],
                   [r[key] for r in rows], s=10, c=color, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("order l (points spread by m)")
    ax.set_ylabel("arithmetic operations (sympy count_ops)")
    ax.set_title("Operations per Y_lm: recurrent vs direct")
    ax.legend()
    fig.tight_layout()
    png_path = out_dir / "opcount.png"
    fig.savefig(png_path, dpi=150)
    plt.close(fig)
    return [csv_path, png_path]
