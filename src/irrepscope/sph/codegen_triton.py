"""Triton emitter: writes ``_generated_triton.py``, fused forward and VJP kernels for any order set.

The kernels are emitted from the same straight-line programs as the torch path
(``program.forward_program`` / ``program.vjp_program``, built from ``symbolic``: shared powers of
w = x^2+z^2, Re/Im (z + i x)^m, one Horner chain per component). Each order present in the set
is one compile-time branch (``OFF<l>``: its first output column, or -1 when absent), so ``[10]``
compiles only order 10 and any set composes in one launch. The normalisation factor ``s`` is a
``tl.constexpr`` per order and every constant a Python float literal, which Triton materialises
in the compute dtype, so float64 kernels use float64 constants (a plain ``t = 1.5`` would become
a float32 tensor: scalar temporaries are emitted as ``tl.constexpr``). Only core ``tl`` builtins
are used (no ``tl.zeros``), so the same functions run compiled or in the interpreter. The
functions are written undecorated; ``triton_backend`` wraps them.
"""

from __future__ import annotations

import math
from pathlib import Path

import sympy as sp

from irrepscope.sph.program import Program, forward_program, vjp_program
from irrepscope.sph.symbolic import MAX_L

TARGET = Path(__file__).with_name("_generated_triton.py")
_EPS = 1e-12  # torch.nn.functional.normalize's eps, as e3nn uses it


# --- expression printing ------------------------------------------------------------------------
def _num(value: sp.Expr) -> str:
    number = float(sp.N(value, 40))
    if not math.isfinite(number):
        raise ValueError(f"non-finite constant {value!r}")
    return repr(number)


def _is_scalar(expr: sp.Expr) -> bool:
    """Numbers and the constexpr normalisation factors s<l>: folded at compile time."""
    return all(sym.name.startswith("s") and sym.name[1:].isdigit() for sym in expr.free_symbols)


def _paren(expr: sp.Expr) -> str:
    text = _code(expr)
    return f"({text})" if expr.is_Add or (expr.is_number and float(sp.N(expr)) < 0) else text


def _code(expr: sp.Expr) -> str:
    """Triton source for a sympy expression (no ``**``; scalar factors grouped first)."""
    if expr.is_Symbol:
        return expr.name
    if expr.is_number:
        return _num(expr)
    if expr.is_Add:
        out = ""
        for term in expr.as_ordered_terms():
            negative = out and term.could_extract_minus_sign()
            out = f"{out} - {_paren(-term)}" if negative else (
                f"{out} + {_code(term)}" if out else _code(term))
        return out
    if expr.is_Mul:
        factors = sp.Mul.make_args(expr)
        scalar = [f for f in factors if _is_scalar(f)]
        tensor = [_paren(f) for f in factors if not _is_scalar(f)]
        if scalar:
            head = " * ".join(_paren(f) for f in scalar)
            tensor.insert(0, f"({head})" if len(scalar) > 1 and tensor else head)
        return " * ".join(tensor)
    if expr.is_Pow and expr.exp.is_Integer and int(expr.exp) > 0:
        return " * ".join([_paren(expr.base)] * int(expr.exp))
    raise ValueError(f"cannot emit Triton code for {expr!r}")


def _program_lines(p: Program, l: int, prefix: str, indent: str) -> tuple[list[str], list[str]]:
    """(assignment lines, output code) of ``p`` with temporaries prefixed and s -> s<l>."""
    names = {sp.Symbol(name, real=True) for name, _ in p.assignments} | {sp.Symbol("u", real=True)}
    rename: dict[sp.Symbol, sp.Symbol] = {n: sp.Symbol(f"{prefix}{n.name}", real=True)
                                          for n in names}
    rename[sp.Symbol("s", real=True)] = sp.Symbol(f"s{l}", real=True)
    rename.update({sp.Symbol(f"g{i}", real=True): sp.Symbol(f"g{l}_{i}", real=True)
                   for i in range(2 * l + 1)})
    lines = []
    for name, expr in p.assignments:
        value = expr.xreplace(rename)
        target = rename[sp.Symbol(name, real=True)].name
        lines.append(f"{indent}{target}: tl.constexpr = {_code(value)}" if _is_scalar(value)
                     else f"{indent}{target} = {_code(value)}")
    outputs = []
    for expr in p.outputs:
        value = expr.xreplace(rename)
        code = _code(value)
        outputs.append(f"tl.full([BLOCK], {code}, COMPUTE)" if _is_scalar(value) else code)
    return lines, outputs


# --- kernel emission ----------------------------------------------------------------------------
def _scale_lines(l: int, indent: str) -> list[str]:
    integral, norm = 1.0 / math.sqrt(4.0 * math.pi), 1.0 / math.sqrt(2 * l + 1)
    return [f"{indent}if NORM == 1:", f"{indent}    s{l}: tl.constexpr = {integral!r}",
            f"{indent}elif NORM == 2:", f"{indent}    s{l}: tl.constexpr = {norm!r}",
            f"{indent}else:", f"{indent}    s{l}: tl.constexpr = 1.0"]


_OFFSETS = ", ".join(f"OFF{l}: tl.constexpr" for l in range(MAX_L + 1))
_FLAGS = "NORMALIZE: tl.constexpr, NORM: tl.constexpr, COMPUTE: tl.constexpr, BLOCK: tl.constexpr"
_LOAD = [
    "    rows = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)",
    "    mask = rows < n",
    "    vec = vec_ptr + rows * vec_stride_n",
    "    x = tl.load(vec, mask=mask, other=0.0).to(COMPUTE)",
    "    y = tl.load(vec + vec_stride_c, mask=mask, other=0.0).to(COMPUTE)",
    "    z = tl.load(vec + 2 * vec_stride_c, mask=mask, other=0.0).to(COMPUTE)",
    "    if NORMALIZE:",
    "        r = tl.sqrt(x * x + y * y + z * z)",
    f"        inv_r = 1.0 / tl.where(r > {_EPS!r}, r, {_EPS!r})",
    "        x = x * inv_r",
    "        y = y * inv_r",
    "        z = z * inv_r",
]


def _row_tile_lines(l: int, outputs: list[str], indent: str) -> list[str]:
    """Order l's 2l+1 columns as one [BLOCK, P] tile (P = next power of two, zero padded), built
    by a tree of ``tl.join`` (each level concatenates neighbours), stored with one masked store.

    A per-column store makes each thread write 4 bytes every out_stride_n elements, so every
    warp-wide store touches 32 separate memory sectors; a row tile lets the compiler give
    consecutive lanes consecutive columns of a row.
    """
    width = 1 << (len(outputs) - 1).bit_length()
    items = [f"y{l}_{m}" for m in range(len(outputs))]  # apart from f<l>_ temporaries
    lines = [f"{indent}{name} = {code}" for name, code in zip(items, outputs, strict=True)]
    if len(items) < width:
        lines.append(f"{indent}y{l}_zero = tl.full([BLOCK], 0.0, COMPUTE)")
        items += [f"y{l}_zero"] * (width - len(items))
    size, level = 1, 0
    while len(items) > 1:
        joined = []
        for k in range(0, len(items), 2):
            name = f"y{l}_j{level}_{k // 2}"
            pair = f"tl.join({items[k]}, {items[k + 1]})"
            lines.append(f"{indent}{name} = {pair}" if size == 1 else
                         f"{indent}{name} = tl.reshape(tl.permute({pair}, (0, 2, 1)), "
                         f"(BLOCK, {2 * size}))")
            joined.append(name)
        items, size, level = joined, 2 * size, level + 1
    return lines + [
        f"{indent}y{l}_cols = tl.arange(0, {width})",
        f"{indent}tl.store(out_ptr + rows[:, None] * out_stride_n + (OFF{l} + y{l}_cols)[None, :],",
        f"{indent}         {items[0]}.to(out_ptr.dtype.element_ty),",
        f"{indent}         mask=mask[:, None] & (y{l}_cols < {len(outputs)})[None, :])",
    ]


def _forward_kernel(orders: list[int]) -> list[str]:
    lines = [
        "def sph_forward_kernel(vec_ptr, out_ptr, n, vec_stride_n, vec_stride_c, out_stride_n,",
        f"                       {_OFFSETS},",
        f"                       {_FLAGS}, ROW_TILES: tl.constexpr):",
        '    """Rows [BLOCK] of out[n, D]: order l fills columns OFF<l>..OFF<l>+2l; ROW_TILES:',
        '    each order l > 0 stored as one [BLOCK, 2l+1] tile instead of column by column."""',
        *_LOAD,
        "    out = out_ptr + rows * out_stride_n",
    ]
    for l in orders:
        lines += [f"    if OFF{l} >= 0:", *_scale_lines(l, "        ")]
        body, outputs = _program_lines(forward_program(l), l, f"f{l}_", "        ")
        lines += body
        columns = [f"tl.store(out + (OFF{l} + {m}), ({code}).to(out_ptr.dtype.element_ty), "
                   "mask=mask)" for m, code in enumerate(outputs)]
        if l == 0:
            lines += [f"        {line}" for line in columns]
            continue
        lines += ["        if ROW_TILES:", *_row_tile_lines(l, outputs, "            "),
                  "        else:", *[f"            {line}" for line in columns]]
    return lines


def _backward_kernel(orders: list[int]) -> list[str]:
    lines = [
        "def sph_backward_kernel(grad_ptr, vec_ptr, gvec_ptr, n, grad_stride_n, grad_stride_c,",
        "                        vec_stride_n, vec_stride_c,",
        f"                        {_OFFSETS},",
        f"                        {_FLAGS}):",
        '    """gvec[n, 3] = sum_k grad[:, k] dY_k/dvec (the VJP), for the same order set."""',
        *_LOAD,
        "    grad = grad_ptr + rows * grad_stride_n",
        "    gx = tl.full([BLOCK], 0.0, COMPUTE)",
        "    gy = tl.full([BLOCK], 0.0, COMPUTE)",
        "    gz = tl.full([BLOCK], 0.0, COMPUTE)",
    ]
    for l in orders:
        if l == 0:
            continue  # a constant: no gradient
        lines += [f"    if OFF{l} >= 0:", *_scale_lines(l, "        ")]
        lines += [f"        g{l}_{m} = tl.load(grad + (OFF{l} + {m}) * grad_stride_c, "
                  "mask=mask, other=0.0).to(COMPUTE)" for m in range(2 * l + 1)]
        body, outputs = _program_lines(vjp_program(l), l, f"b{l}_", "        ")
        lines += body
        lines += [f"        g{axis} += {code}" for axis, code in zip("xyz", outputs, strict=True)]
    lines += [
        "    if NORMALIZE:",
        "        # d(v / max(|v|, eps))/dv: tangential projection over |v|; defined as zero for",
        "        # |v| <= eps (as the torch path: zero vectors get finite, zero gradients)",
        "        radial = gx * x + gy * y + gz * z",
        f"        big = r > {_EPS!r}",
        "        gx = tl.where(big, (gx - radial * x) * inv_r, 0.0)",
        "        gy = tl.where(big, (gy - radial * y) * inv_r, 0.0)",
        "        gz = tl.where(big, (gz - radial * z) * inv_r, 0.0)",
        "    gvec = gvec_ptr + rows * 3",
        "    tl.store(gvec, gx.to(gvec_ptr.dtype.element_ty), mask=mask)",
        "    tl.store(gvec + 1, gy.to(gvec_ptr.dtype.element_ty), mask=mask)",
        "    tl.store(gvec + 2, gz.to(gvec_ptr.dtype.element_ty), mask=mask)",
    ]
    return lines


def emit_triton(orders: list[int] | None = None) -> str:
    """Source text of ``_generated_triton.py`` for distinct ``orders`` (default: 0..MAX_L)."""
    ls = list(range(MAX_L + 1)) if orders is None else list(orders)
    if sorted(set(ls)) != sorted(ls) or any(not 0 <= l <= MAX_L for l in ls):
        raise ValueError(f"orders must be distinct and in 0..{MAX_L}, got {ls}")
    header = [
        '"""Generated by ``python -m irrepscope.sph.codegen`` from ``irrepscope.sph.symbolic``.',
        "",
        "Do not edit: edit ``codegen_triton.py`` and regenerate; ``--check`` compares this file.",
        "Kernels are plain functions; ``triton_backend`` wraps them with triton.jit or the",
        'interpreter. Grid: cdiv(n, BLOCK). NORM: 0 component, 1 integral, 2 norm."""',
        "",
        "import triton.language as tl",
        "",
        f"MAX_L = {MAX_L}",
        f"ORDERS = {tuple(sorted(ls))!r}",
        "",
        "",
    ]
    body = _forward_kernel(sorted(ls)) + ["", ""] + _backward_kernel(sorted(ls))
    return "\n".join(header + body) + "\n"
