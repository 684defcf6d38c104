"""Straight-line programs per order l, built from ``symbolic``: what every generated backend
evaluates (``codegen`` prints them for torch, ``codegen_triton`` for Triton).

``forward_program(l)`` and ``vjp_program(l)`` return a ``Program``: ``assignments``, a list of
``(temp_name, sympy_expr)`` in evaluation order (common subexpressions shared: y^2, w = x^2+z^2
and its powers, Re/Im (z + i x)^m, one Horner chain per component), and ``outputs``, sympy
expressions in the inputs and temporaries. Inputs: ``x, y, z`` and the Python scalar ``s``
(normalisation factor, folded into constants); the VJP also takes the cotangent columns
``g0..g{2l}`` of that order and returns (gx, gy, gz).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from irrepscope.sph.symbolic import Component, X, Y, Z, component

S = sp.Symbol("s", real=True)  # normalisation factor, a Python float at run time


@dataclass
class Program:
    """Straight-line code: ``assignments`` [(name, expr)] in order, then ``outputs`` [expr]."""

    assignments: list[tuple[str, sp.Expr]] = field(default_factory=list)
    outputs: list[sp.Expr] = field(default_factory=list)

    def let(self, name: str, expr: sp.Expr) -> sp.Expr:
        """Append ``name = expr`` (or inline a bare symbol/number) and return its symbol."""
        if expr.is_Symbol or expr.is_number:
            return expr
        self.assignments.append((name, expr))
        return sp.Symbol(name, real=True)


_Table = dict[int, sp.Expr]


def shared_temporaries(p: Program, l: int) -> tuple[_Table, _Table, _Table]:
    """Temporaries every component of order <= l reuses: powers of w = x^2 + z^2, and
    (cos-like, sin-like) Re/Im (z + i x)^m for m <= l."""
    wp: dict[int, sp.Expr] = {0: sp.Integer(1)}
    if l >= 2:
        wp[1] = p.let("w", X * X + Z * Z)
        for k in range(2, l // 2 + 1):
            wp[k] = p.let(f"w{k}", wp[k - 1] * wp[1])
    cos: dict[int, sp.Expr] = {0: sp.Integer(1), 1: Z}
    sin: dict[int, sp.Expr] = {0: sp.Integer(0), 1: X}
    for m in range(2, l + 1):
        cos[m] = p.let(f"c{m}", cos[m - 1] * Z - sin[m - 1] * X)
        sin[m] = p.let(f"s{m}", sin[m - 1] * Z + cos[m - 1] * X)
    return wp, cos, sin


def _horner(p: Program, name: str, coeffs: list[sp.Expr], wp: dict[int, sp.Expr]) -> sp.Expr:
    """sum_k coeffs[k] u^(J-k) w^k with u = y^2, evaluated as nested products (scaled by s)."""
    if not coeffs:
        return sp.Integer(0)
    acc: sp.Expr = coeffs[0] * S
    for k in range(1, len(coeffs)):
        acc = p.let(f"{name}_{k}", acc * sp.Symbol("u", real=True) + (coeffs[k] * S) * wp[k])
    return acc


def _azimuth(m: int, cos: dict[int, sp.Expr], sin: dict[int, sp.Expr]) -> sp.Expr:
    return cos[m] if m >= 0 else sin[-m]


def _polar(p: Program, c: Component, tag: str, wp: dict[int, sp.Expr]) -> sp.Expr:
    acc = _horner(p, f"q{tag}", [c.norm * a for a in c.coeffs], wp)
    return acc * Y if c.parity else acc


def _tag(m: int) -> str:
    return f"m{-m}" if m < 0 else f"p{m}"


def forward_program(l: int) -> Program:
    """Outputs: the 2l+1 components Y_l,-l..Y_l,l times ``s``, from ``x, y, z``."""
    p = Program()
    if l >= 2:
        p.let("u", Y * Y)
    wp, cos, sin = shared_temporaries(p, l)
    for m in range(-l, l + 1):
        p.outputs.append(_polar(p, component(l, m), _tag(m), wp) * _azimuth(m, cos, sin))
    return p


def vjp_program(l: int) -> Program:
    """Outputs (gx, gy, gz) = sum_m g_m d(s Y_lm)/d(x, y, z) from ``x, y, z, g0..g{2l}``, l >= 1."""
    if l < 1:
        raise ValueError("order 0 is constant: it has no VJP program")
    p = Program()
    if l >= 2:
        p.let("u", Y * Y)
    wp, cos, sin = shared_temporaries(p, l)
    a_terms, x_terms, y_terms, z_terms = [], [], [], []
    for i, m in enumerate(range(-l, l + 1)):
        c, tag, g = component(l, m), _tag(m), sp.Symbol(f"g{i}", real=True)
        big_j, am = len(c.coeffs) - 1, abs(m)
        t = _azimuth(m, cos, sin)
        full = _polar(p, c, tag, wp)  # Q including y^parity, the norm and s
        # dQ/dw = y^parity sum_k k a_k u^(J-k) w^(k-1)
        qw = _horner(p, f"w{tag}", [(k + 1) * c.norm * c.coeffs[k + 1] for k in range(big_j)], wp)
        qw = qw * Y if c.parity else qw
        # dQ/dy: parity 1 -> sum (2(J-k)+1) a_k u^(J-k) w^k; parity 0 -> y sum 2(J-k) a_k ...
        if c.parity:
            qy = _horner(p, f"y{tag}", [(2 * (big_j - k) + 1) * c.norm * a
                                         for k, a in enumerate(c.coeffs)], wp)
        else:
            qy = _horner(p, f"y{tag}", [2 * (big_j - k) * c.norm * c.coeffs[k]
                                         for k in range(big_j)], wp) * Y
        if qw != 0:
            a_terms.append(g * qw * t)
        if qy != 0:
            y_terms.append(g * qy * t)
        if am:  # d T_m / dx, dz through (z + i x)^(m-1)
            if m > 0:
                tx, tz = -am * sin[am - 1], am * cos[am - 1]
            else:
                tx, tz = am * cos[am - 1], am * sin[am - 1]
            if tx != 0:
                x_terms.append(g * full * tx)
            if tz != 0:
                z_terms.append(g * full * tz)
    shared = p.let("a", sp.Add(*a_terms)) if a_terms else sp.Integer(0)
    p.outputs = [2 * X * shared + sp.Add(*x_terms), sp.Add(*y_terms),
                 2 * Z * shared + sp.Add(*z_terms)]
    return p
