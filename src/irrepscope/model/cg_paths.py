"""Static plan of the fused tensor product: path groups, weight layout and sparse Clebsch-Gordan.

Conventions follow ``e3nn.o3.FullyConnectedTensorProduct`` (irrep normalization 'component',
path normalization 'element'): the path (i_in, i_sh, i_out) adds
``alpha * sum_{u,v} w[u,v,w] (x_u (x) y_v) . C`` to output channel w, with ``C = wigner_3j(l1,
l2, l3)`` and ``alpha = sqrt((2 l3 + 1) / sum_{paths into i_out} mul_in * mul_sh)``.

Paths are grouped into *pairs* (i_in, i_out): all paths between one input and one output entry
(they differ only in the SH entry). The fused weight layout is pair by pair, each pair's block
ordered [u][path][v][w], so that per pair one batched product over edges contracts x with the
pair's weights, giving y [E, 2 l1 + 1, paths * v * w] = [E, (m1, path, v), w] without copies.
The Clebsch-Gordan contraction with the spherical harmonics gives, per pair, a per-edge matrix
S^T [E, 2 l3 + 1, (m1, path, v)] = sh @ ``cg_matrix`` columns (stored transposed: the batched
product S^T y then has the w channels as its output columns, the layout in which small batched
matrix products run fastest); it adds the pair's contribution to its output entry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from e3nn import o3

from irrepscope.model.message import Path, tensor_product_paths


@dataclass(frozen=True)
class Pair:
    """All paths between input entry i_in and output entry i_out (e3nn order within)."""

    i_in: int
    i_out: int
    paths: tuple[int, ...]   # indices into the e3nn path list
    rows: int                # sum over paths of mul_sh (K of the second product, per m1)
    weight_cols: int         # columns of weight_out owned by the pair: mul_in * rows * mul_out


@dataclass(frozen=True)
class FusedPlan:
    """Static description of the fused tensor product (every size a Python int)."""

    paths: list[Path]
    pairs: list[Pair]
    in_slices: list[tuple[int, int]]     # per input entry: (mul, 2l+1)
    out_slices: list[tuple[int, int]]    # per output entry: (mul, 2l+1)
    perm: torch.Tensor                   # fused weight column j = e3nn column perm[j]
    cg_matrix: torch.Tensor              # [irreps_sh.dim, sum_pairs (2l3+1) (2l1+1) rows], float64
    cg_nonzeros: int                     # non-zero entries of cg_matrix


def path_alphas(irreps_in: o3.Irreps, irreps_sh: o3.Irreps, irreps_out: o3.Irreps,
                 paths: list[Path]) -> list[float]:
    """e3nn's 'component' x 'element' normalisation constant of each path."""
    fan = [0] * len(irreps_out)
    for p in paths:
        fan[p.i_out] += irreps_in[p.i_in].mul * irreps_sh[p.i_sh].mul
    return [math.sqrt(irreps_out[p.i_out].ir.dim / fan[p.i_out]) if fan[p.i_out] > 0 else 0.0
            for p in paths]


def build_plan(irreps_in: o3.Irreps, irreps_sh: o3.Irreps, irreps_out: o3.Irreps,
               scale: float = 1.0) -> FusedPlan:
    """Plan for x [E, irreps_in.dim] (x) sh [E, irreps_sh.dim] -> [E, irreps_out.dim].

    ``scale`` multiplies every Clebsch-Gordan coefficient (folds the radial MLP's constant
    factors into the table at no cost).
    """
    irreps_in, irreps_sh = o3.Irreps(irreps_in), o3.Irreps(irreps_sh)
    irreps_out = o3.Irreps(irreps_out)
    paths = tensor_product_paths(irreps_in, irreps_sh, irreps_out)
    alphas = path_alphas(irreps_in, irreps_sh, irreps_out, paths)
    e3nn_offset, off = [], 0
    for p in paths:
        e3nn_offset.append(off)
        off += p.num_weights
    by_pair: dict[tuple[int, int], list[int]] = {}
    for k, p in enumerate(paths):
        by_pair.setdefault((p.i_in, p.i_out), []).append(k)

    sh_offsets = [0]
    for mul, ir in irreps_sh:
        sh_offsets.append(sh_offsets[-1] + mul * ir.dim)
    pairs, perm, cg_blocks = [], [], []
    for (i1, i3), ks in sorted(by_pair.items()):
        mul_u, d1 = irreps_in[i1].mul, irreps_in[i1].ir.dim
        mul_w, d3 = irreps_out[i3].mul, irreps_out[i3].ir.dim
        rows = sum(irreps_sh[paths[k].i_sh].mul for k in ks)
        pairs.append(Pair(i1, i3, tuple(ks), rows, mul_u * rows * mul_w))
        for u in range(mul_u):
            for k in ks:
                mul_v = irreps_sh[paths[k].i_sh].mul
                perm.extend(e3nn_offset[k] + (u * mul_v + v) * mul_w + w
                            for v in range(mul_v) for w in range(mul_w))
        block = torch.zeros(irreps_sh.dim, d3, d1, rows, dtype=torch.float64)
        row = 0
        for k in ks:
            p = paths[k]
            l1, l2, l3 = irreps_in[i1].ir.l, irreps_sh[p.i_sh].ir.l, irreps_out[i3].ir.l
            cg = o3.wigner_3j(l1, l2, l3, dtype=torch.float64) * (alphas[k] * scale)
            d2 = 2 * l2 + 1
            for v in range(irreps_sh[p.i_sh].mul):
                start = sh_offsets[p.i_sh] + v * d2
                block[start:start + d2, :, :, row] = cg.permute(1, 2, 0)  # [m2, m3, m1]
                row += 1
        cg_blocks.append(block.reshape(irreps_sh.dim, -1))
    cg_matrix = torch.cat(cg_blocks, dim=1) if cg_blocks else torch.zeros(irreps_sh.dim, 0)
    cg_matrix[cg_matrix.abs() < 1e-15] = 0.0
    return FusedPlan(
        paths=paths, pairs=pairs,
        in_slices=[(mul, ir.dim) for mul, ir in irreps_in],
        out_slices=[(mul, ir.dim) for mul, ir in irreps_out],
        perm=torch.tensor(perm, dtype=torch.long), cg_matrix=cg_matrix,
        cg_nonzeros=int((cg_matrix != 0).sum()),
    )


def multiply_adds_per_edge(plan: FusedPlan, num_basis: int, radial_hidden: int) -> dict[str, int]:
    """Necessary forward multiply-adds per edge: radial MLP, and tensor product (CG non-zeros)."""
    contract_x = contract_sh = 0
    for pair in plan.pairs:
        mul_u, d1 = plan.in_slices[pair.i_in]
        mul_w, d3 = plan.out_slices[pair.i_out]
        contract_x += mul_u * d1 * pair.rows * mul_w
        contract_sh += mul_w * d1 * pair.rows * d3
    return {
        "radial": num_basis * radial_hidden + radial_hidden * int(plan.perm.numel()),
        "tensor_product": contract_x + contract_sh + plan.cg_nonzeros,
    }
