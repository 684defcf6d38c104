"""Matplotlib figures of an analysis (paper Figures 1, 2, 4-7 style), written as PNG files.

Projection panels are keyed by (view, key): view "raw" | "invariant", key "joint" | "l=<l>".
Colour is NSPS (viridis, shared colour bar); molecules RDKit could not score are grey.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.ticker import (  # noqa: E402
    FuncFormatter,
    LogLocator,
    MaxNLocator,
    NullFormatter,
)

from irrepscope.analysis.projection import Projection  # noqa: E402
from irrepscope.files import atomic_output  # noqa: E402

VIEWS = ("raw", "invariant")
VIEW_LABELS = {"raw": "raw components", "invariant": "invariant (channel norms)"}
STATUS_TEXT = {"unused": "unused irrep\n(constant features)", "too_few": "too few molecules"}


def panel_keys(orders: Sequence[int]) -> list[str]:
    """Column keys of a Figure 1-style grid: "joint", then "l=<l>" for every order."""
    return ["joint", *(f"l={l}" for l in orders)]


def _nsps_norm(nsps: np.ndarray) -> Normalize:
    finite = nsps[np.isfinite(nsps)]
    if finite.size == 0:
        return Normalize(0.0, 1.0)
    low, high = float(finite.min()), float(finite.max())
    return Normalize(low, high if high > low else low + 1.0)


def _scatter(ax: plt.Axes, proj: Projection, nsps: np.ndarray, norm: Normalize,
             size: float) -> matplotlib.collections.PathCollection | None:
    """Draw one projection panel; returns the coloured collection (for the colour bar)."""
    ax.set_xticks([])
    ax.set_yticks([])
    if not proj.ok:
        ax.text(0.5, 0.5, STATUS_TEXT.get(proj.status, proj.status), ha="center", va="center",
                transform=ax.transAxes, fontsize=9, color="0.3")
        ax.set_facecolor("0.95")
        return None
    xy = proj.coords
    bad = ~np.isfinite(nsps)
    if bad.any():
        ax.scatter(xy[bad, 0], xy[bad, 1], s=size, c="0.7", linewidths=0, label="no NSPS")
    good = ~bad
    return ax.scatter(xy[good, 0], xy[good, 1], s=size, c=nsps[good], cmap="viridis", norm=norm,
                      linewidths=0)


def figure_projections(panels: Mapping[tuple[str, str], Projection], keys: Sequence[str],
                       nsps: np.ndarray, out: Path, title: str = "",
                       views: Sequence[str] = VIEWS) -> Path:
    """Figure 1-style grid: one row per view, one column per key, coloured by NSPS [n]."""
    nsps = np.asarray(nsps, dtype=np.float64)
    norm = _nsps_norm(nsps)
    size = float(np.clip(2000 / max(len(nsps), 1), 2, 25))
    fig, axes = plt.subplots(len(views), len(keys), figsize=(2.3 * len(keys) + 1.2,
                                                               2.3 * len(views) + 0.6),
                             squeeze=False)
    mappable = None
    for r, view in enumerate(views):
        for c, key in enumerate(keys):
            ax = axes[r, c]
            proj = panels.get((view, key))
            if proj is None:
                ax.set_axis_off()
                continue
            mappable = _scatter(ax, proj, nsps, norm, size) or mappable
            if r == 0:
                ax.set_title(key, fontsize=10)
            if c == 0:
                ax.set_ylabel(VIEW_LABELS.get(view, view), fontsize=9)
    if mappable is None:
        mappable = matplotlib.cm.ScalarMappable(norm=norm, cmap="viridis")
    fig.colorbar(mappable, ax=axes.ravel().tolist(), shrink=0.8, label="NSPS")
    num_bad = int((~np.isfinite(nsps)).sum())
    suffix = f"  ({num_bad} molecules without NSPS in grey)" if num_bad else ""
    fig.suptitle(f"{title}{suffix}", fontsize=11)
    return _save(fig, out)


def quadrant_extremes(coords: np.ndarray) -> list[int]:
    """Indices of the NE, NW, SW, SE extremes of coords [n, 2]: in each quadrant around the
    median, the molecule farthest from it (axes scaled to unit range); the molecule nearest
    the bounding-box corner when a quadrant is empty."""
    xy = np.asarray(coords, dtype=np.float64)
    low, span = xy.min(0), np.ptp(xy, axis=0)
    unit = (xy - low) / np.where(span > 0, span, 1.0)
    offset = unit - np.median(unit, axis=0)
    dist = (offset ** 2).sum(1)
    picks = []
    for sx, sy in ((1, 1), (-1, 1), (-1, -1), (1, -1)):
        inside = np.flatnonzero((np.sign(offset[:, 0]) == sx) & (np.sign(offset[:, 1]) == sy))
        if inside.size:
            picks.append(int(inside[np.argmax(dist[inside])]))
        else:
            corner = np.array([(sx + 1) / 2, (sy + 1) / 2])
            picks.append(int(np.argmin(((unit - corner) ** 2).sum(1))))
    return picks


def figure_extremes(proj: Projection, smiles: Sequence[str], nsps: np.ndarray, out: Path,
                    title: str = "") -> Path:
    """Figure 7-style: a projection with its four quadrant extremes drawn by RDKit."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem import Draw

    RDLogger.DisableLog("rdApp.*")
    if not proj.ok:
        raise ValueError(f"panel {proj.name} has no projection ({proj.status})")
    nsps = np.asarray(nsps, dtype=np.float64)
    picks = quadrant_extremes(proj.coords)
    fig = plt.figure(figsize=(11, 7))
    grid = fig.add_gridspec(2, 3, width_ratios=[1, 1.6, 1])
    centre = fig.add_subplot(grid[:, 1])
    mappable = _scatter(centre, proj, nsps, _nsps_norm(nsps), 12)
    if mappable is not None:
        fig.colorbar(mappable, ax=centre, shrink=0.6, location="bottom", label="NSPS")
    slots = {"NE": grid[0, 2], "NW": grid[0, 0], "SW": grid[1, 0], "SE": grid[1, 2]}
    for number, ((corner, slot), index) in enumerate(zip(slots.items(), picks, strict=True), 1):
        x, y = proj.coords[index]
        centre.scatter([x], [y], s=120, facecolors="none", edgecolors="red", linewidths=1.5)
        centre.annotate(str(number), (x, y), xytext=(4, 4), textcoords="offset points",
                        color="red", fontsize=11, weight="bold")
        ax = fig.add_subplot(slot)
        ax.set_axis_off()
        mol = Chem.MolFromSmiles(smiles[index])
        if mol is not None:
            ax.imshow(Draw.MolToImage(mol, size=(300, 300)))
        score = "n/a" if not np.isfinite(nsps[index]) else f"{nsps[index]:.1f}"
        ax.set_title(f"{number} ({corner}) {smiles[index]}\nNSPS {score}", fontsize=8)
    fig.suptitle(title or proj.name, fontsize=11)
    return _save(fig, out)


def tensor_product_table(orders: Sequence[int], l_in: Sequence[int],
                         sh_orders: Sequence[int] | None = None
                         ) -> dict[tuple[int, int], list[int]]:
    """{(input l, output l): [SH orders l_sh with a path l_in x l_sh -> l_out]} (parity-checked);
    ``orders``: output orders, ``sh_orders``: the harmonics' orders (default: ``orders``)."""
    from e3nn import o3

    from irrepscope.model.irreps import hidden_irreps, sh_irreps
    from irrepscope.model.message import tensor_product_paths

    ins, outs = hidden_irreps(l_in, 1), hidden_irreps(orders, 1)
    sh = sh_irreps(orders if sh_orders is None else sh_orders)
    table: dict[tuple[int, int], list[int]] = {}
    for p in tensor_product_paths(ins, sh, outs):
        key = (ins[p.i_in].ir.l, outs[p.i_out].ir.l)
        table.setdefault(key, []).append(o3.Irreps(sh)[p.i_sh].ir.l)
    return table


def figure_tensor_product_paths(orders: Sequence[int], out: Path, title: str = "",
                                sh_orders: Sequence[int] | None = None) -> Path:
    """Figure 2-style: for the input block (scalars in) and the hidden blocks, a grid of input
    order x output order whose cells list the spherical-harmonic orders coupling them.
    ``orders``: the hidden features' orders; ``sh_orders``: the harmonics' (default: the same)."""
    orders = sorted(orders)
    panels = [("input block (atom embedding: scalars)", [0]), ("hidden blocks", orders)]
    fig, axes = plt.subplots(1, 2, figsize=(3.0 + 1.3 * len(orders), 1.2 + 0.7 * len(orders)),
                             gridspec_kw={"width_ratios": [1.0, len(orders)]})
    for ax, (name, l_in) in zip(axes, panels, strict=True):
        table = tensor_product_table(orders, l_in, sh_orders)
        counts = np.array([[len(table.get((a, b), [])) for a in l_in] for b in orders])
        ax.imshow(counts, cmap="Blues", vmin=0, vmax=max(len(orders), 1), origin="lower",
                  aspect="auto")
        for i, b in enumerate(orders):
            for j, a in enumerate(l_in):
                shs = table.get((a, b), [])
                ax.text(j, i, ",".join(map(str, shs)) if shs else "-", ha="center",
                        va="center", fontsize=8)
        ax.set_xticks(range(len(l_in)), [str(a) for a in l_in])
        ax.set_yticks(range(len(orders)), [str(b) for b in orders])
        ax.set_xlabel("input order l")
        ax.set_ylabel("output order l")
        total = sum(len(v) for v in table.values())
        ax.set_title(f"{name}: {total} paths", fontsize=9)
    fig.suptitle(title or f"tensor-product paths, L={orders} (cells: SH orders coupling them)",
                 fontsize=10)
    return _save(fig, out)


def read_metrics(path: Path) -> dict[str, np.ndarray]:
    """Columns of a run's metrics.csv as float arrays (non-numeric cells become NaN)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns: dict[str, np.ndarray] = {}
    for key in (rows[0].keys() if rows else []):
        values = []
        for row in rows:
            try:
                values.append(float(row[key]))
            except (TypeError, ValueError):
                values.append(np.nan)
        columns[key] = np.asarray(values)
    return columns


def figure_learning_curve(metrics_csv: Path, out: Path, title: str = "",
                          baseline: Mapping[str, float | None] | None = None) -> Path:
    """Train/validation MSE and MAE (eV) per epoch from metrics.csv, log scale.

    ``baseline`` ({"mse": eV², "mae": eV}, validation split) draws the composition baseline
    as a horizontal line.
    """
    baseline = baseline or {}
    cols = read_metrics(metrics_csv)
    epoch = cols.get("epoch", np.arange(len(next(iter(cols.values()), []))))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, kind in zip(axes, ("mse", "mae"), strict=True):
        for split, style in (("train", "-"), ("val", "--")):
            values = cols.get(f"{split}_{kind}")
            if values is not None and np.isfinite(values).any():
                ok = np.isfinite(values)
                ax.plot(epoch[ok], values[ok], style,
                        marker="o", ms=3, label=split)
        level = baseline.get(kind)
        if ax.lines and level is not None and np.isfinite(level):
            ax.axhline(level, color="0.4", ls=":", lw=1.2,
                       label="composition baseline (val)")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(f"{kind.upper()} ({'eV²' if kind == 'mse' else 'eV'})")
        if ax.lines:
            ax.set_yscale("log")
            ax.legend()
        else:
            ax.text(0.5, 0.5, f"no {kind} in metrics.csv", ha="center", transform=ax.transAxes)
    fig.suptitle(title or "learning curve", fontsize=11)
    fig.tight_layout()
    return _save(fig, out)


UTILIZATION_PANELS = (
    ("variance_share", "variance share"), ("probe_r2_energy", "probe R² (energy)"),
    ("probe_r2_nsps", "probe R² (NSPS)"),
    ("nsps_consistency_invariant", "NSPS consistency (1 = none)"),
    ("ablation_rel_mse", "ablation: rel. MSE change"),
    ("grad_x_input_share", "|grad x input| share"),
)


def figure_utilization(rows: Sequence[Mapping[str, float]], out: Path, title: str = "") -> Path:
    """Bar charts of the utilization numbers, one bar per l (rows of the utilization table)."""
    fig, axes = plt.subplots(2, 3, figsize=(11, 5.5))
    labels = [f"l={int(r['l'])}" for r in rows]
    for ax, (key, name) in zip(axes.ravel(), UTILIZATION_PANELS, strict=True):
        values = np.array([float(r.get(key, np.nan)) for r in rows])
        ax.bar(labels, np.nan_to_num(values), color=["C0" if np.isfinite(v) else "0.8"
                                                      for v in values])
        if key == "ablation_rel_mse" and np.isfinite(values).any() and values.max() > 10:
            ax.set_yscale("symlog")
        ax.axhline(0, color="k", lw=0.6)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=8)
    fig.suptitle(title or "utilization per l", fontsize=11)
    fig.tight_layout()
    return _save(fig, out)


OVER_TRAINING_PANELS = (("ablation_rel_mse", "MSE × when l is zeroed (ablation)"),
                        ("probe_r2_energy", "probe R² (energy)"),
                        ("variance_share", "variance share"))


def figure_irreps_over_training(tracking_csv: Path, out: Path, title: str = "") -> Path:
    """Use of each l against epochs trained (``irreps_over_training.csv`` of
    ``train.track_irreps``), last block: ablation factor (log), energy probe R², variance
    share; one line per l."""
    cols = read_metrics(tracking_csv)
    last = np.nanmax(cols["block"]) if len(cols.get("block", [])) else 0
    keep = cols["block"] == last
    epochs, orders = cols["epochs_trained"][keep], cols["l"][keep]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    for ax, (key, name) in zip(axes, OVER_TRAINING_PANELS, strict=True):
        values = cols[key][keep] + (1.0 if key == "ablation_rel_mse" else 0.0)
        for i, l in enumerate(sorted(set(orders.astype(int)))):
            mine = (orders == l) & np.isfinite(values)
            if mine.any():
                ax.plot(epochs[mine], values[mine], marker="o", ms=3, color=f"C{i % 10}",
                        label=f"l={l}")
        if key == "ablation_rel_mse" and ax.lines:
            from irrepscope.analysis.verdict import DEPENDS_ON_FACTOR

            ax.set_yscale("log")
            ax.axhline(1.0, color="0.5", lw=0.8, ls=":")
            ax.axhline(DEPENDS_ON_FACTOR, color="0.3", lw=0.8, ls="--")
            ax.text(0.99, DEPENDS_ON_FACTOR, f"depends-on rule ×{DEPENDS_ON_FACTOR:g}",
                    ha="right", va="bottom", fontsize=7, color="0.3",
                    transform=ax.get_yaxis_transform())
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
        if not ax.lines:
            ax.text(0.5, 0.5, "n/a (too few molecules)" if key.startswith("probe") else "n/a",
                    ha="center", transform=ax.transAxes, color="0.4")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("epochs trained")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=8)
    handles, labels = next(((a.get_legend_handles_labels()) for a in axes if a.lines), ([], []))
    if handles:
        fig.legend(handles, labels, loc="center right", fontsize=8)
    fig.suptitle((title or "use of each l over training") + f" (block {int(last)})", fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.93, 1))
    return _save(fig, out)


def _save(fig: plt.Figure, out: Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_output(out) as handle:
            fig.savefig(handle, format=out.suffix.lstrip(".") or "png", dpi=110,
                        bbox_inches="tight")
    finally:
        plt.close(fig)
    return out
