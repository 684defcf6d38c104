"""Independent 50-digit reference: real spherical harmonics from the Legendre sum formula (mpmath).

Shares no code with ``symbolic`` or e3nn: P_l(t) = 2^-l sum_k (-1)^k C(l,k) C(2l-2k,l) t^(l-2k),
its m-th derivative term by term, P_l^m = (1-t^2)^(m/2) d^m P_l (no Condon-Shortley phase),
t = y/|v|, azimuth phi = atan2(x, z) (e3nn's frame: y polar, m>0 ~ cos(m phi), m<0 ~ sin).
"""

from __future__ import annotations

import mpmath
import torch

DIGITS = 50


def _legendre_derivative(l: int, m: int, t: mpmath.mpf) -> mpmath.mpf:
    total = mpmath.mpf(0)
    for k in range(l // 2 + 1):
        power = l - 2 * k
        if power < m:
            continue
        c = (-1) ** k * mpmath.binomial(l, k) * mpmath.binomial(2 * l - 2 * k, l)
        total += c * mpmath.ff(power, m) * t ** (power - m)
    return total / mpmath.mpf(2) ** l


def oracle_component(l: int, x: float, y: float, z: float) -> list[mpmath.mpf]:
    """[Y_l,-l .. Y_l,l] at the direction of (x, y, z) (unit-normalised here), 'component'."""
    with mpmath.workdps(DIGITS):
        x, y, z = mpmath.mpf(x), mpmath.mpf(y), mpmath.mpf(z)
        r = mpmath.sqrt(x * x + y * y + z * z)
        x, y, z = x / r, y / r, z / r
        sin_theta = mpmath.sqrt(x * x + z * z)
        phi = mpmath.atan2(x, z)
        out = []
        for m in range(-l, l + 1):
            am = abs(m)
            p = sin_theta ** am * _legendre_derivative(l, am, y)
            n = mpmath.sqrt(2 * l + 1)
            if am:
                n *= mpmath.sqrt(2 * mpmath.factorial(l - am) / mpmath.factorial(l + am))
                p *= mpmath.cos(am * phi) if m > 0 else mpmath.sin(am * phi)
            out.append(n * p)
        return out


def oracle(l: int, vectors: torch.Tensor) -> torch.Tensor:
    """Y_l [N, 2l+1] ('component', normalised directions) of vectors [N, 3], float64 result."""
    rows = [oracle_component(l, *map(float, v)) for v in vectors.detach().cpu().double()]
    return torch.tensor([[float(c) for c in row] for row in rows], dtype=torch.float64)
