"""Accuracy of every backend and dtype against a 50-digit oracle: ``irrepscope sph accuracy``.

Errors are measured per order l on unit directions with ``normalize=True`` and 'component'
normalisation (|Y^l| = sqrt(2l+1)): absolute error per component, and relative error per vector
``|Y^l - Y^l_exact|_2 / |Y^l_exact|_2``. The directions are exactly representable in float16,
bfloat16, float32 and float64, so every dtype sees the same input and the numbers measure the
implementation, not the rounding of the input. The oracle evaluates the real spherical harmonics
from associated Legendre functions in mpmath at 50 digits (independent of e3nn and of the
generated code; ``irrepscope.sph.oracle``), in e3nn's axes (y is the polar axis).
"""

from __future__ import annotations

import csv
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import torch
from tqdm import tqdm

L_MAX = 10
ORDERS = list(range(L_MAX + 1))
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
          "float64": torch.float64}
BACKENDS = ("torch", "triton", "e3nn")
TRITON_CPU_VECTORS = 256  # Triton's interpreter is slow: a subset on CPU
COMMAND = "irrepscope sph accuracy"


@dataclass(frozen=True)
class ErrorStats:
    """Errors of one backend, dtype and order l against the oracle."""

    backend: str
    dtype: str
    l: int
    vectors: int
    max_abs: float
    mean_abs: float
    max_rel: float
    mean_rel: float


# --- inputs and oracle -------------------------------------------------------------------------
def accuracy_directions(num_vectors: int, seed: int = 0) -> torch.Tensor:
    """[n, 3] float64 directions (axes, poles, near-poles, random), exact in all four dtypes."""
    special = torch.tensor([[0, 1, 0], [0, -1, 0], [1, 0, 0], [0, 0, 1], [-1, 0, -1],
                            [2.0 ** -10, 1, 0], [0, -1, 2.0 ** -12], [1, 1, 1]],
                           dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    rand = torch.randn(max(num_vectors - len(special), 0), 3, generator=generator,
                       dtype=torch.float64)
    vectors = torch.cat([special, rand])[:num_vectors]
    vectors = vectors.to(torch.bfloat16).to(torch.float64)  # 8 significant bits
    vectors[vectors.abs() < 2.0 ** -14] = 0.0  # below float16's normal range
    vectors[(vectors == 0).all(-1)] = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    return vectors


def oracle_values(directions: torch.Tensor) -> torch.Tensor:
    """[n, (L_MAX+1)^2] float64: ``oracle.oracle`` (50 digits, rounded once), orders 0..L_MAX."""
    from irrepscope.sph.oracle import oracle

    return torch.cat([oracle(l, directions) for l in tqdm(ORDERS, desc="oracle (50 digits)",
                                                           leave=False)], dim=1)


# --- backends ------------------------------------------------------------------------------------
def _triton_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def backend_values(backend: str, directions: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[n, 121] of ``backend`` on ``directions`` cast to ``dtype``, returned as float64."""
    if backend == "e3nn":
        from e3nn import o3

        out = o3.spherical_harmonics(ORDERS, directions.to(dtype), True, "component")
    elif backend == "torch":
        from irrepscope.sph.api import spherical_harmonics

        out = spherical_harmonics(ORDERS, directions.to(dtype), normalize=True,
                                  normalization="component", backend="torch")
    elif backend == "triton":
        from irrepscope.sph.triton_backend import spherical_harmonics_triton

        vectors = directions.to(device=_triton_device(), dtype=dtype)
        out = spherical_harmonics_triton(ORDERS, vectors, True, "component")
    else:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    return out.detach().to(device="cpu", dtype=torch.float64)


def _stats(backend: str, dtype: str, got: torch.Tensor, exact: torch.Tensor) -> list[ErrorStats]:
    rows = []
    for l in ORDERS:
        cols = slice(l * l, (l + 1) * (l + 1))
        diff = (got[:, cols] - exact[:, cols]).abs()
        rel = diff.norm(dim=-1) / exact[:, cols].norm(dim=-1)
        rows.append(ErrorStats(backend, dtype, l, got.shape[0], diff.max().item(),
                               diff.mean().item(), rel.max().item(), rel.mean().item()))
    return rows


@dataclass(frozen=True)
class AccuracyResult:
    """Per-l errors, backend-vs-backend max |difference| per dtype, and notes on restrictions."""

    stats: list[ErrorStats]
    agreement: list[tuple[str, str, str, float]]  # (dtype, backend a, backend b, max |a - b|)
    notes: list[str]


def measure_accuracy(num_vectors: int = 2000, seed: int = 0,
                     backends: tuple[str, ...] = BACKENDS) -> AccuracyResult:
    """Error statistics per (backend, dtype, l) against the oracle, and cross-backend agreement."""
    if num_vectors < 1:
        raise ValueError(f"num_vectors must be positive, got {num_vectors}")
    directions = accuracy_directions(num_vectors, seed)
    exact = oracle_values(directions)
    stats, notes, values = [], [], {}
    for backend in backends:
        subset = directions
        if backend == "triton":
            try:
                import triton  # noqa: F401
            except ImportError:
                notes.append("triton: not importable, no triton rows")
                continue
            if _triton_device().type == "cpu":
                subset = directions[:TRITON_CPU_VECTORS]
                notes.append(f"triton: no GPU, so Triton's interpreter on the first {len(subset)} "
                             "directions; the interpreter truncates float32 -> bfloat16 where "
                             "GPUs round to nearest, so its bfloat16 row is pessimistic")
        for name, dtype in tqdm(DTYPES.items(), desc=f"{backend}", leave=False):
            got = backend_values(backend, subset, dtype)
            values[backend, name] = got
            stats += _stats(backend, name, got, exact[: len(subset)])
    agreement = []
    for a, b in (("torch", "e3nn"), ("triton", "torch"), ("triton", "e3nn")):
        for name in DTYPES:
            if (a, name) in values and (b, name) in values:
                n = min(len(values[a, name]), len(values[b, name]))
                diff = (values[a, name][:n] - values[b, name][:n]).abs().max().item()
                agreement.append((name, a, b, diff))
    return AccuracyResult(stats, agreement, notes)


# --- report ---------------------------------------------------------------------------------------
def _fmt(value: float) -> str:
    return f"{value:.1e}"


def _summary(stats: list[ErrorStats]) -> tuple[list[list[object]], list[str]]:
    rows, sentences = [], []
    for dtype, torch_dtype in DTYPES.items():
        eps = torch.finfo(torch_dtype).eps
        worst = {}
        for backend in BACKENDS:
            mine = [s for s in stats if s.backend == backend and s.dtype == dtype]
            if not mine:
                continue
            w = max(mine, key=lambda s: s.max_rel)
            worst[backend] = w
            rows.append([dtype, backend, _fmt(w.max_rel), w.l, f"{w.max_rel / eps:.1f}",
                         _fmt(max(s.mean_rel for s in mine)), _fmt(max(s.max_abs for s in mine))])
        if worst:
            parts = ", ".join(f"{b} {w.max_rel / eps:.1f} eps (l={w.l})" for b, w in worst.items())
            sentences.append(f"- **{dtype}** (eps = {eps:.1e}): worst relative error {parts}.")
    return rows, sentences


def _interpretation(stats: list[ErrorStats]) -> list[str]:
    """Sentences computed from the numbers: irrepscope vs e3nn per dtype, and growth with l."""
    def worst(backend: str, dtype: str, l: int | None = None) -> float | None:
        values = [s.max_rel for s in stats if s.backend == backend and s.dtype == dtype
                  and (l is None or s.l == l)]
        return max(values) if values else None

    lines = []
    for dtype, torch_dtype in DTYPES.items():
        eps = torch.finfo(torch_dtype).eps
        ours = {b: worst(b, dtype) for b in ("torch", "triton") if worst(b, dtype) is not None}
        theirs = worst("e3nn", dtype)
        if not ours or theirs is None or theirs == 0:
            continue
        parts = ", ".join(f"{b} {v / eps:.1f} eps" for b, v in ours.items())
        best = min(ours.values())
        lines.append(f"- {dtype}: worst relative error over l <= 10 is {parts} for irrepscope "
                     f"and {theirs / eps:.1f} eps for e3nn (irrepscope / e3nn = "
                     f"{best / theirs:.2g}); at l=1 e3nn reaches "
                     f"{worst('e3nn', dtype, 1) / eps:.1f} eps.")
    return lines


def _plot(stats: list[ErrorStats], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(DTYPES), figsize=(4 * len(DTYPES), 3.6), sharex=True)
    for ax, (dtype, torch_dtype) in zip(axes, DTYPES.items(), strict=True):
        for backend, marker in zip(BACKENDS, "osd", strict=True):
            mine = sorted((s for s in stats if s.backend == backend and s.dtype == dtype
                           and s.l > 0), key=lambda s: s.l)  # l = 0 is the exact constant
            if mine:
                ax.semilogy([s.l for s in mine], [s.max_rel for s in mine], marker=marker,
                            label=backend)
        ax.axhline(torch.finfo(torch_dtype).eps, color="grey", ls="--", lw=1, label="eps")
        ax.set_title(dtype)
        ax.set_xlabel("order l (l = 0 is exact)")
    axes[0].set_ylabel("max relative error vs 50-digit oracle")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_accuracy_report(out_dir: Path, num_vectors: int = 2000) -> list[Path]:
    """Measure and write accuracy.md, accuracy.csv and accuracy.png into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = measure_accuracy(num_vectors)
    csv_path, png_path, md_path = (out_dir / f"accuracy.{ext}" for ext in ("csv", "png", "md"))
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([f.name for f in fields(ErrorStats)])
        writer.writerows(astuple(s) for s in result.stats)
    _plot(result.stats, png_path)
    md_path.write_text(_markdown(result, num_vectors, png_path.name))
    return [md_path, csv_path, png_path]


def _markdown(result: AccuracyResult, num_vectors: int, png: str) -> str:
    from irrepscope.tables import machine_description

    stats, notes = result.stats, result.notes
    summary_rows, sentences = _summary(stats)
    lines = [
        "# Spherical-harmonics accuracy",
        "",
        f"Command: `{COMMAND} --vectors {num_vectors}`  ",
        f"Machine: {machine_description()}",
        "",
        __doc__.split("\n\n", 1)[1].strip().replace("\n", " "),
        "",
        *(f"Note: {n}." for n in notes),
        "",
        "## Summary: worst order per backend and dtype",
        "",
        _table(["dtype", "backend", "max rel", "at l", "max rel / eps", "worst mean rel",
                "max abs"], summary_rows),
        "",
        *sentences,
        "",
        "## Agreement between backends (exchangeability)",
        "",
        _table(["dtype", "a", "b", "max abs(a - b)"],
               [[d, a, b, _fmt(v)] for d, a, b, v in result.agreement]),
        "",
        "## Interpretation",
        "",
        *_interpretation(stats),
        "",
        INTERPRETATION,
        "",
        f"![max relative error per l]({png})",
        "",
        "## Per order",
        "",
        _table(["l", "backend", "dtype", "vectors", "max abs", "mean abs", "max rel", "mean rel"],
               [[s.l, s.backend, s.dtype, s.vectors, _fmt(s.max_abs), _fmt(s.mean_abs),
                 _fmt(s.max_rel), _fmt(s.mean_rel)]
                for s in sorted(stats, key=lambda s: (s.l, s.backend, s.dtype))]),
    ]
    return "\n".join(lines) + "\n"


def _table(header: list[str], rows: list[list[object]]) -> str:
    from irrepscope.tables import markdown_table

    return markdown_table(header, rows)


INTERPRETATION = (
    "How to read this. The paper left open whether the direct kernels trade accuracy for speed "
    "and whether they are exchangeable with e3nn. An error of a few eps is what any evaluation "
    "of a degree-10 polynomial with O(100) coefficients in that dtype can achieve, so the "
    "'max rel / eps' column is the figure of merit, and the agreement table bounds how far a "
    "model would see two backends differ. irrepscope evaluates float16/bfloat16 inputs in "
    "float32 and rounds once, so its half-precision error is a fraction of one eps at every "
    "l; e3nn runs its recurrence in the input dtype, so its half-precision error is several "
    "eps and grows with l. In float32 and float64 all backends sit at a similar few-eps level "
    "that grows with l (cancellation in the polynomials); their mutual differences are of the "
    "same size as their errors against the oracle, which is the last-bit disagreement the "
    "paper observed, not a loss of accuracy of either implementation. A model trained with one "
    "backend and run with another therefore sees differences at the dtype's rounding level; "
    "for long molecular-dynamics runs in half precision the irrepscope backends are the more "
    "accurate choice."
)
