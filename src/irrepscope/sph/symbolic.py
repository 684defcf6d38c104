"""Sympy derivation of each real spherical harmonic l <= 10, directly in x, y, z (single source).

Convention (e3nn's, checked against it by the tests): y is the polar axis, the azimuth is measured
from z towards x, no Condon-Shortley phase, components m = -l..l. With w = x^2 + z^2 and
T_m = Re (z + i x)^m for m >= 0, S_m = Im (z + i x)^m, the 'component'-normalised harmonic is

    Y_lm = N_lm * Q_lm(y, w) * (T_m if m >= 0 else S_|m|),

where Q_lm = sum_k a_k y^(l-|m|-2k) w^k is the homogenised m-th derivative of the Legendre
polynomial P_l (so Y_lm is a homogeneous polynomial of degree l, as e3nn's without normalisation)
and N_lm = sqrt(2l+1) * sqrt(2 (l-|m|)! / (l+|m|)!) (no sqrt(2) and no factorial ratio at m=0).
Nothing here depends on order l-1: each order is derived and evaluated on its own.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import sympy as sp

MAX_L = 10
X, Y, Z = sp.symbols("x y z", real=True)
_T = sp.Symbol("t")


@dataclass(frozen=True)
class Component:
    """Y_lm = norm * y^parity * sum_k coeffs[k] (y^2)^(J-k) w^k * azimuthal part (exact numbers).

    ``coeffs`` has J+1 entries, J = (l - |m| - parity) / 2; ``m`` selects T_m (m >= 0) or S_|m|.
    """

    l: int
    m: int
    norm: sp.Expr
    parity: int
    coeffs: tuple[sp.Rational, ...]


@functools.cache
def component(l: int, m: int) -> Component:
    """The structured closed form of Y_lm ('component' normalisation), l in 0..10, |m| <= l."""
    if not (0 <= l <= MAX_L and -l <= m <= l):
        raise ValueError(f"need 0 <= l <= {MAX_L} and -l <= m <= l, got l={l}, m={m}")
    am = abs(m)
    derivative = sp.Poly(sp.diff(sp.legendre(l, _T), _T, am), _T)
    degree = l - am
    parity = degree % 2
    u, w = sp.symbols("u w")  # u = y^2, w = x^2 + z^2, so r^2 = u + w
    # t^j -> y^j r^(degree - j): homogenise, then collect in (y^2, w)
    # (the y^parity factor is kept aside: y^j = y^parity * u^((j - parity) / 2))
    q = sum(c * u ** ((j - parity) // 2) * (u + w) ** ((degree - j) // 2)
            for (j,), c in zip(derivative.monoms(), derivative.coeffs(), strict=True))
    poly = sp.Poly(sp.expand(q), u, w)
    big_j = (degree - parity) // 2
    coeffs = tuple(sp.Rational(poly.coeff_monomial(u ** (big_j - k) * w ** k))
                   for k in range(big_j + 1))
    norm = sp.sqrt(2 * l + 1)
    if m:
        norm = norm * sp.sqrt(2 * sp.factorial(l - am) / sp.factorial(l + am))
    return Component(l, m, sp.nsimplify(norm), parity, coeffs)


def azimuthal(m: int) -> sp.Expr:
    """T_m = Re (z + i x)^m for m >= 0, S_|m| = Im (z + i x)^|m| for m < 0, expanded."""
    value = sp.expand((Z + sp.I * X) ** abs(m))
    return sp.re(value) if m >= 0 else sp.im(value)


def polar(c: Component) -> sp.Expr:
    """Q_lm(y, w) with w = x^2 + z^2 written out, in nested (Horner) form, including the norm."""
    u, w = Y ** 2, X ** 2 + Z ** 2
    acc = sp.Integer(0)
    for k, a in enumerate(c.coeffs):
        acc = acc * u + a * w ** k if k else sp.Integer(a)
    return c.norm * Y ** c.parity * acc


@functools.cache
def component_expressions(l: int) -> tuple[sp.Expr, ...]:
    """The 2l+1 expressions Y_l,-l..Y_l,l in X, Y, Z, 'component' normalisation, Horner form."""
    return tuple(polar(component(l, m)) * azimuthal(m) for m in range(-l, l + 1))


@functools.cache
def expanded_expressions(l: int) -> tuple[sp.Expr, ...]:
    """The same polynomials fully expanded into monomials (for op counts and checks)."""
    return tuple(sp.expand(e) for e in component_expressions(l))


def gradient_expressions(l: int) -> tuple[tuple[sp.Expr, sp.Expr, sp.Expr], ...]:
    """(dY/dx, dY/dy, dY/dz) of each component of order l, as sympy polynomials."""
    return tuple((sp.diff(e, X), sp.diff(e, Y), sp.diff(e, Z)) for e in component_expressions(l))


def scale(l: int, normalization: str) -> float:
    """Factor turning 'component' into ``normalization`` for order l (e3nn's definitions)."""
    import math

    if normalization == "component":
        return 1.0
    if normalization == "integral":
        return 1.0 / math.sqrt(4.0 * math.pi)
    if normalization == "norm":
        return 1.0 / math.sqrt(2 * l + 1)
    raise ValueError(f"normalization must be 'integral', 'component' or 'norm', "
                     f"got {normalization!r}")
