"""The interactive explorer of a report's projections (Bokeh), self-contained in report.html.

One panel per projection (joint and each l, raw and invariant views) of one or several runs of
the same molecules. All panels plot columns of one ``ColumnDataSource``, so Bokeh links them:
selecting points (box, lasso or tap) in one panel highlights the same molecules in every other,
and hovering shows the molecule's SMILES, its 2-D structure (RDKit SVG), energy, the model's
error, NSPS and heavy-atom count. A menu colours every panel by NSPS, error, energy or heavy
atoms.

Size: the drawings are RDKit SVGs with text as text (no glyph outlines) and without their
repeated styles, stored once for all molecules as one gzip blob (about 200 bytes a molecule
in base64 for QM9) that the page unpacks after it has drawn the panels (the browser's
``DecompressionStream``); coordinates travel as float32 arrays. Bokeh's JavaScript is inlined
once per page (``resources_html``), so a report works without a network.
"""

from __future__ import annotations

import base64
import gzip
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from irrepscope.analysis.projection import Projection

PANEL_PX = 180
DRAWING_PX = (160, 130)
JS_COMPONENTS = ("bokeh", "bokeh-gl", "bokeh-widgets")
COLOURS = {"nsps": "NSPS", "error": "error (eV, predicted − true)", "energy": "energy (eV)",
           "heavy_atoms": "heavy atoms"}
TOOLTIP = """<div style="max-width:200px">
<div style="font-weight:bold;word-break:break-all">@smiles</div>@drawing{safe}
<div>energy @energy{0.000} eV<br>error @error{+0.000} eV<br>NSPS @nsps{0.00}<br>
heavy atoms @heavy_atoms{0}<br>molecule @molecule</div></div>"""
STATUS_TEXT = {"unused": "unused irrep (constant features)", "too_few": "too few molecules"}


@dataclass
class Molecules:
    """What hover shows and colours use, one entry per molecule (n): SMILES ('' when unknown),
    energy and error (eV, NaN when unknown), NSPS, heavy atoms, and an id (test index)."""

    smiles: list[str]
    energy: np.ndarray
    error: np.ndarray
    nsps: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.smiles)


@dataclass
class RunPanels:
    """One run's projections: {(view, key): Projection}, the keys in grid order, a label."""

    label: str
    projections: Mapping[tuple[str, str], Projection]
    keys: Sequence[str]


@dataclass
class Fragment:
    """An explorer as HTML: Bokeh's script and the panel divs (needs ``resources_html``)."""

    script: str
    html: str
    points: int


def resources_html() -> str:
    """Bokeh's JavaScript, inlined (what every explorer on a page needs, once)."""
    from bokeh.resources import Resources

    return Resources(mode="inline", components=list(JS_COMPONENTS)).render_js()


def heavy_atoms(smiles: Sequence[str]) -> np.ndarray:
    """Heavy-atom count per SMILES (NaN for an empty or unparsable one)."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    out = np.full(len(smiles), np.nan)
    for i, text in enumerate(smiles):
        mol = Chem.MolFromSmiles(text) if text else None
        if mol is not None:
            out[i] = mol.GetNumHeavyAtoms()
    return out


def _compact_svg(svg: str) -> str:
    """An RDKit SVG's body without its header, classes and repeated bond style (the explorer
    adds the ``<svg>`` element and those defaults back)."""
    body = re.sub(r"^.*?<svg[^>]*>", "", svg, count=1, flags=re.S)
    body = body.replace("<!-- END OF HEADER -->", "").replace("</svg>", "")
    body = re.sub(r" class='[^']*'", "", body)
    body = re.sub(r"style='fill:none;fill-rule:evenodd;stroke:(#[0-9A-Fa-f]{6});"
                  r"stroke-width:2\.0px;stroke-linecap:butt;stroke-linejoin:miter;"
                  r"stroke-opacity:1'", r"stroke='\1'", body)
    return re.sub(r">\s+<", "><", re.sub(r"\s+", " ", body)).replace(" />", "/>").strip()


def drawings(smiles: Sequence[str]) -> list[str]:
    """Compact RDKit SVG bodies (``_compact_svg``) of 2-D drawings; '' when there is none."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem.Draw import rdMolDraw2D

    RDLogger.DisableLog("rdApp.*")
    out = []
    for text in smiles:
        mol = Chem.MolFromSmiles(text) if text else None
        if mol is None:
            out.append("")
            continue
        drawer = rdMolDraw2D.MolDraw2DSVG(*DRAWING_PX, -1, -1, True)  # text as <text>
        drawer.drawOptions().clearBackground = False
        drawer.DrawMolecule(mol)
        drawer.FinishDrawing()
        out.append(_compact_svg(drawer.GetDrawingText()))
    return out


def drawing_store(smiles: Sequence[str]) -> str:
    """Base64 of the gzip of all compact drawings joined by NUL (what the page unpacks)."""
    data = "\0".join(drawings(smiles)).encode()
    return base64.b64encode(gzip.compress(data, compresslevel=9, mtime=0)).decode("ascii")


def _range(values: np.ndarray, symmetric: bool = False) -> tuple[float, float]:
    """Colour range: 1st-99th percentile of the finite values (symmetric around 0 on request)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(finite, [1, 99]))
    if symmetric:
        high = max(abs(low), abs(high)) or 1.0
        return -high, high
    return (low, high) if high > low else (low - 0.5, low + 0.5)


def _column(label: str, view: str, key: str, axis: str) -> str:
    return f"{label}|{view}|{key}|{axis}"


def _source_data(molecules: Molecules, runs: Sequence[RunPanels]) -> dict[str, object]:
    n = len(molecules)
    data: dict[str, object] = {
        "smiles": [s or "(no SMILES)" for s in molecules.smiles],
        "drawing": [""] * n, "energy": np.asarray(molecules.energy, np.float64),
        "error": np.asarray(molecules.error, np.float64),
        "nsps": np.asarray(molecules.nsps, np.float64),
        "heavy_atoms": heavy_atoms(molecules.smiles), "molecule": np.asarray(molecules.ids),
    }
    data["colour"] = data["nsps"]
    for run in runs:
        for (view, key), proj in run.projections.items():
            if proj.ok and proj.coords is not None and len(proj.coords) == n:
                xy = np.asarray(proj.coords, dtype=np.float32)
                data[_column(run.label, view, key, "x")] = xy[:, 0]
                data[_column(run.label, view, key, "y")] = xy[:, 1]
    return data


def _panel(source: object, mapper: object, run: RunPanels, view: str, key: str) -> object:
    from bokeh.models import BoxSelectTool, HoverTool, Label, LassoSelectTool, TapTool
    from bokeh.plotting import figure

    title = f"{run.label}: {view} {key}" if run.label else f"{view} {key}"
    fig = figure(width=PANEL_PX, height=PANEL_PX, title=title, output_backend="webgl",
                 tools="pan,wheel_zoom,reset", toolbar_location="above")
    fig.toolbar.logo = None
    fig.toolbar.autohide = True
    fig.xaxis.visible = fig.yaxis.visible = False
    fig.grid.visible = False
    proj = run.projections.get((view, key))
    x, y = _column(run.label, view, key, "x"), _column(run.label, view, key, "y")
    if proj is None or not proj.ok or x not in source.data:
        status = "missing" if proj is None else proj.status
        fig.add_layout(Label(x=10, y=PANEL_PX // 2 - 40, x_units="screen", y_units="screen",
                             text=STATUS_TEXT.get(status, status), text_font_size="11px",
                             text_color="#555555"))
        fig.scatter([0], [0], alpha=0)  # an empty panel still needs a range
        return fig
    renderer = fig.scatter(x, y, source=source, size=4, line_color=None,
                           fill_color={"field": "colour", "transform": mapper},
                           nonselection_fill_alpha=0.08, selection_fill_alpha=1.0,
                           hover_line_color="#d62728", hover_line_width=2)
    box = BoxSelectTool(renderers=[renderer])
    fig.add_tools(HoverTool(renderers=[renderer], tooltips=TOOLTIP), box,
                  LassoSelectTool(renderers=[renderer]), TapTool(renderers=[renderer]))
    fig.toolbar.active_drag = box
    return fig


UNPACK_JS = """
if (!store || typeof DecompressionStream === "undefined") return;
const bytes = Uint8Array.from(atob(store), (c) => c.charCodeAt(0));
const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
new Response(stream).text().then((text) => {
  const head = "<svg xmlns='http://www.w3.org/2000/svg' width='" + size[0] + "' height='" +
    size[1] + "' viewBox='0 0 " + size[0] + " " + size[1] + "' fill='none' stroke-width='2' " +
    "stroke-linecap='round'>";
  const drawing = text.split("\\0").map((body) => body ? head + body + "</svg>" : "");
  source.data = Object.assign({}, source.data, {drawing: drawing});
});
"""
RECOLOUR_JS = """
const key = keys[this.value];
mapper.palette = key === "error" ? diverging : sequential;
mapper.low = ranges[key][0];
mapper.high = ranges[key][1];
bar.title = this.value;
source.data = Object.assign({}, source.data, {colour: source.data[key]});
"""


def explorer(molecules: Molecules, runs: Sequence[RunPanels]) -> Fragment:
    """The explorer of ``runs`` (projections of the same ``molecules``, in the same order)."""
    from bokeh.document import Document
    from bokeh.embed import components
    from bokeh.models import ColorBar, ColumnDataSource, CustomJS, Div, LinearColorMapper, Select
    from bokeh.palettes import RdBu11, Viridis256
    from bokeh.plotting import figure

    data = _source_data(molecules, runs)
    source = ColumnDataSource(data)
    ranges = {key: _range(np.asarray(data[key], np.float64), symmetric=key == "error")
              for key in COLOURS}
    mapper = LinearColorMapper(palette=Viridis256, low=ranges["nsps"][0],
                               high=ranges["nsps"][1], nan_color="#bbbbbb")
    bar_fig = figure(width=PANEL_PX, height=70, toolbar_location=None, min_border=0,
                     outline_line_color=None)
    bar_fig.xaxis.visible = bar_fig.yaxis.visible = False
    bar_fig.grid.visible = False
    bar = ColorBar(color_mapper=mapper, orientation="horizontal", title=COLOURS["nsps"],
                   width=PANEL_PX - 40, height=12, location=(0, 0))
    bar_fig.add_layout(bar, "center")
    bar_fig.scatter([0], [0], alpha=0)
    select = Select(title="colour by", value=COLOURS["nsps"], options=list(COLOURS.values()),
                    width=PANEL_PX)
    select.js_on_change("value", CustomJS(
        args={"source": source, "mapper": mapper, "bar": bar, "ranges": ranges,
              "keys": {label: key for key, label in COLOURS.items()},
              "sequential": list(Viridis256), "diverging": list(reversed(RdBu11))},
        code=RECOLOUR_JS))
    controls = [select, bar_fig, Div(text=_counts_text(molecules), width=PANEL_PX)]
    rows = [(run, view) for run in runs for view in ("raw", "invariant")]
    panels = [_panel(source, mapper, run, view, key) for run, view in rows for key in run.keys]
    document = Document()
    for model in [*controls, *panels]:
        document.add_root(model)
    document.js_on_event("document_ready", CustomJS(
        args={"source": source, "store": drawing_store(molecules.smiles),
              "size": list(DRAWING_PX)}, code=UNPACK_JS))
    script, divs = components([*controls, *panels])
    html = ['<div class="explorer"><div class="explorer-controls">', *divs[:len(controls)],
            "</div>"]
    position = len(controls)
    for run, _view in rows:  # one row of panels per run and view, wrapping on narrow screens
        html += ['<div class="explorer-panels">', *divs[position:position + len(run.keys)],
                 "</div>"]
        position += len(run.keys)
    return Fragment(script, "".join(html) + "</div>", len(molecules))


def _counts_text(molecules: Molecules) -> str:
    """A line for the controls: molecules, and how many lack a drawing or a number."""
    n = len(molecules)
    parts = [f"{n:,} molecules; hover a point for its structure, drag to select (box or "
             f"lasso in the toolbar): the same molecules light up in every panel."]
    missing = sum(1 for s in molecules.smiles if not s)
    if missing:
        parts.append(f"{missing:,} without SMILES (no drawing).")
    if not np.isfinite(np.asarray(molecules.error, np.float64)).any():
        parts.append("No predictions: error is n/a.")
    return " ".join(parts)


def same_molecules(ids: Sequence[np.ndarray]) -> list[list[int]]:
    """Groups of positions in ``ids`` whose molecule ids are identical (same order)."""
    groups: list[list[int]] = []
    for i, current in enumerate(ids):
        for group in groups:
            first = ids[group[0]]
            if len(first) == len(current) and np.array_equal(first, current):
                group.append(i)
                break
        else:
            groups.append([i])
    return groups


def load_molecules(analysis_dir: Path) -> Molecules:
    """The molecules of an analysis folder (embeddings.npz, projections.npz)."""
    emb = np.load(Path(analysis_dir) / "embeddings.npz")
    nsps = np.load(Path(analysis_dir) / "projections.npz")["nsps"]
    true, pred = emb["energy_true"].astype(np.float64), emb["energy_pred"].astype(np.float64)
    return Molecules([str(s) for s in emb["smiles"]], true, pred - true, nsps,
                     emb["test_indices"])


def analysis_explorers(runs: Sequence[tuple[str, Path, int, Sequence[str]]]
                       ) -> list[tuple[Fragment, list[str]]]:
    """Explorers of analysed runs: ``runs`` as (label, analysis folder, block, panel keys);
    runs of the same molecules share one explorer (and its linked selection). Returns each
    explorer with the labels it shows."""
    from irrepscope.analysis.analyze import load_projections

    molecules = [load_molecules(folder) for _, folder, _, _ in runs]
    out = []
    for group in same_molecules([m.ids for m in molecules]):
        panels = [RunPanels(runs[i][0], load_projections(runs[i][1] / "projections.npz",
                                                         runs[i][2])[0], runs[i][3])
                  for i in group]
        out.append((explorer(molecules[group[0]], panels), [runs[i][0] for i in group]))
    return out
