"""Straight-line programs per order l from ``symbolic``, and the emitters of generated files.

Extension point (how a backend is added, e.g. Triton in ``_generated_triton.py``):

* ``forward_program(l)`` and ``vjp_program(l)`` (in ``sph.program``) return a ``Program``:
  ``assignments``, a list of ``(temp_name, sympy_expr)`` in evaluation order (common
  subexpressions shared: y^2, w = x^2+z^2 and its powers, Re/Im (z + i x)^m, one Horner chain
  per component), and ``outputs``, sympy
  expressions in the inputs and temporaries. Inputs: ``x, y, z`` (a unit vector, or the raw vector
  when not normalising) and the Python scalar ``s`` (normalisation factor, folded into constants);
  the VJP also takes the cotangent columns ``g0..g{2l}`` of that order and returns (gx, gy, gz).
  Every constant is an exact sympy number; ``Dialect.number`` prints it to full float64 precision.
* ``render(expr, dialect)`` prints an expression; a ``Dialect`` names the backend's calls
  (``torch.full_like`` for a constant column, etc.) and which symbols are scalars.
* An emitter is a function returning the generated file's text; ``TARGETS`` maps each generated
  file to its emitter, and ``python -m irrepscope.sph.codegen`` (``--check``) writes (compares)
  all of them. A new backend adds its emitter to ``TARGETS``: e.g. ``_generated_triton.py`` from
  ``codegen_triton.emit_triton`` fed with ``symbolic.component_expressions``.
"""

from __future__ import annotations

import argparse
import difflib
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import sympy as sp

from irrepscope.sph.program import Program, S, forward_program, shared_temporaries, vjp_program
from irrepscope.sph.symbolic import MAX_L, Y

_HERE = Path(__file__).parent


# --- printing -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dialect:
    """How a backend spells things: a constant column, and which symbols are Python scalars."""

    name: str
    constant_column: Callable[[str, str], str]  # (like, value) -> code of a filled column
    scalars: frozenset[str] = frozenset({"s"})
    axpy: Callable[[str, str, str], str] | None = None  # (acc, tensor, scalar) -> acc + a*t
    fma: Callable[[str, str, str, str], str] | None = None  # (acc, t1, t2, scalar): acc + a*t1*t2


TORCH = Dialect("torch", lambda like, value: f"torch.full_like({like}, {value})",
                axpy=lambda acc, tensor, alpha: f"torch.add({acc}, {tensor}, alpha={alpha})",
                fma=lambda acc, a, b, value: f"torch.addcmul({acc}, {a}, {b}, value={value})")


def number(value: sp.Expr) -> str:
    """A constant to full float64 precision (shortest round-trip repr)."""
    out = float(sp.N(value, 40))
    if not math.isfinite(out):
        raise ValueError(f"non-finite constant {value!r}")
    return repr(out)


def _paren(expr: sp.Expr, dialect: Dialect) -> str:
    text = render(expr, dialect)
    return f"({text})" if expr.is_Add or (expr.is_number and expr < 0) else text


def render(expr: sp.Expr, dialect: Dialect) -> str:
    """Code for ``expr``; numbers and scalar symbols are grouped first (scalar arithmetic)."""
    if expr.is_Symbol:
        return expr.name
    if expr.is_number:
        return number(expr)
    if expr.is_Add and dialect.axpy is not None:
        return _render_axpy(expr, dialect)
    if expr.is_Add:
        out = ""
        terms = expr.as_ordered_terms()  # positive terms first: "z * z - x * x"
        terms = [t for t in terms if not t.could_extract_minus_sign()] + [
            t for t in terms if t.could_extract_minus_sign()]
        for term in terms:
            if out and term.could_extract_minus_sign():
                out += f" - {_paren(-term, dialect)}"
            else:
                out += (" + " if out else "") + render(term, dialect)
        return out
    if expr.is_Mul:
        scalar, tensor = [], []
        for f in sp.Mul.make_args(expr):
            is_scalar = f.is_number or (f.is_Symbol and f.name in dialect.scalars)
            (scalar if is_scalar else tensor).append(f)
        parts = [_paren(f, dialect) for f in tensor]
        if scalar:
            numbers = sp.Mul(*[f for f in scalar if f.is_number])
            names = [f.name for f in scalar if not f.is_number]
            head = " * ".join(([] if numbers == 1 else [_paren(numbers, dialect)]) + names)
            if not tensor:
                return head
            parts.insert(0, f"({head})" if " " in head else head)
        return " * ".join(parts)
    if expr.is_Pow and expr.exp.is_Integer and int(expr.exp) > 0:
        return " * ".join([_paren(expr.base, dialect)] * int(expr.exp))
    raise ValueError(f"cannot render {expr!r} for {dialect.name}")


def _needs(name: str) -> int:
    """Lowest order whose program computes the shared temporary ``name`` (u, w, wk, ck, sk)."""
    if name in ("u", "w"):
        return 2
    if name[0] == "w" and name[1:].isdigit():
        return 2 * int(name[1:])
    if name[0] in "cs" and name[1:].isdigit():
        return int(name[1:])
    return -1  # not shared


def _split_scalar(term: sp.Expr, dialect: Dialect) -> tuple[sp.Expr, list[sp.Symbol]] | None:
    """term = scalar * (one or two tensor symbols, no powers), else None."""
    scalar, tensor = [], []
    for f in sp.Mul.make_args(term):
        is_scalar = f.is_number or (f.is_Symbol and f.name in dialect.scalars)
        (scalar if is_scalar else tensor).append(f)
    if 1 <= len(tensor) <= 2 and all(f.is_Symbol for f in tensor):
        return sp.Mul(*scalar), tensor
    return None


def _render_axpy(expr: sp.Expr, dialect: Dialect) -> str:
    """Sums with fused ``acc + a * t`` and ``acc + a * t1 * t2`` steps (one kernel each)."""
    plain, fused = [], []
    for term in expr.as_ordered_terms():
        split = _split_scalar(term, dialect)
        usable = split is not None and (len(split[1]) == 1 or dialect.fma is not None)
        (fused if usable else plain).append(split if usable else term)
    if not plain:
        alpha, tensors = fused.pop(0)
        plain = [alpha * sp.Mul(*tensors)]
    out = render(sp.Add(*plain), replace(dialect, axpy=None))
    for alpha, tensors in fused:
        names = [f.name for f in tensors]
        out = (dialect.axpy(out, names[0], render(alpha, dialect)) if len(names) == 1
               else dialect.fma(out, names[0], names[1], render(alpha, dialect)))
    return out


def _body(p: Program, dialect: Dialect, indent: str = "    ") -> list[str]:
    """Assignments; shared temporaries are read from the dict ``t`` built once by ``common``."""
    return [f'{indent}{name} = t["{name}"]' if _needs(name) >= 0 else
            f"{indent}{name} = {render(expr, dialect)}" for name, expr in p.assignments]


def _common_function(dialect: Dialect) -> list[str]:
    """``common(x, y, z, lmax)``: the temporaries shared by all orders up to ``lmax``, once."""
    p = Program()
    p.let("u", Y * Y)
    shared_temporaries(p, MAX_L)
    lines = ["def common(x, y, z, lmax):",
             '    """Temporaries shared by orders <= lmax: y^2, powers of x^2+z^2, (z+ix)^m."""',
             "    t = {}"]
    level = 1
    for name, expr in sorted(p.assignments, key=lambda a: _needs(a[0])):
        if _needs(name) > level:
            level = _needs(name)
            lines.append(f"    if lmax < {level}:")
            lines.append("        return t")
        lines.append(f'    t["{name}"] = {name} = {render(expr, dialect)}')
    return lines + ["    return t", ""]


def emit_torch() -> str:
    """Text of ``_generated_torch.py``: forward_<l> and vjp_<l> on [N] column tensors."""
    lines = [
        '"""Generated by ``python -m irrepscope.sph.codegen`` from ``irrepscope.sph.symbolic``.',
        "",
        "Do not edit. t = common(x, y, z, lmax) once per call (shared temporaries), then",
        "forward_<l>(x, y, z, s, t) -> 2l+1 columns (m=-l..l) of s * Y_l ('component') and",
        "vjp_<l>(x, y, z, s, t, g) -> (gx, gy, gz), g the 2l+1 cotangent columns of that order.",
        'x, y, z and g are tensors of one shape, s a Python float, lmax >= l."""',
        "",
        "import torch",
        "",
        f"MAX_L = {MAX_L}",
        "",
        "",
        *_common_function(TORCH),
    ]
    for l in range(MAX_L + 1):
        p = forward_program(l)
        outs = [render(o, TORCH) if o.free_symbols - {S} else
                TORCH.constant_column("x", render(o, TORCH)) for o in p.outputs]
        lines += ["", f"def forward_{l}(x, y, z, s, t):", *_body(p, TORCH),
                  f"    return [{', '.join(outs)}]", ""]
        if l >= 1:
            v = vjp_program(l)
            args = ", ".join(f"g{i}" for i in range(2 * l + 1))
            outs = [render(o, TORCH) for o in v.outputs]
            lines += ["", f"def vjp_{l}(x, y, z, s, t, g):", f"    {args}, = g", *_body(v, TORCH),
                      f"    return {', '.join(outs)}", ""]
    lines += ["", f"FORWARD = ({', '.join(f'forward_{l}' for l in range(MAX_L + 1))})",
              f"VJP = (None, {', '.join(f'vjp_{l}' for l in range(1, MAX_L + 1))})"]
    return "\n".join(lines) + "\n"


def _emit_triton() -> str:
    from irrepscope.sph import codegen_triton

    return codegen_triton.emit_triton()


def targets() -> dict[Path, Callable[[], str]]:
    """Generated file -> emitter; the Triton emitter joins when ``codegen_triton`` is present."""
    out: dict[Path, Callable[[], str]] = {_HERE / "_generated_torch.py": emit_torch}
    if (_HERE / "codegen_triton.py").exists():
        out[_HERE / "_generated_triton.py"] = _emit_triton
    return out


def main(argv: list[str] | None = None) -> int:
    """Write every generated file, or with ``--check`` exit 1 when one differs from a fresh run."""
    parser = argparse.ArgumentParser(prog="python -m irrepscope.sph.codegen")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--only", choices=["torch", "triton"], default=None)
    args = parser.parse_args(argv)
    status = 0
    for path, emit in targets().items():
        if args.only and args.only not in path.name:
            continue
        text = emit()
        if args.check:
            old = path.read_text() if path.exists() else ""
            if old != text:
                diff = list(difflib.unified_diff(old.splitlines(), text.splitlines(),
                                                 str(path), "regenerated", lineterm="", n=1))
                print(f"{path.name} differs from a fresh generation "
                      f"({len(diff)} diff lines); run python -m irrepscope.sph.codegen")
                print("\n".join(diff[:20]))
                status = 1
            else:
                print(f"{path.name}: up to date")
        else:
            path.write_text(text)
            print(f"wrote {path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
