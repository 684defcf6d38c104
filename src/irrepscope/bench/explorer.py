"""Benchmark of the report's explorer on a full QM9 test set's worth of molecules (13,000).

A trained run (default: the demo's ``runs/demo/l03456_h16``; train it with ``irrepscope demo``)
embeds 13,000 QM9 molecules it never trained or validated on (a seeded draw from the molecules
outside its train and validation splits); ``analysis.features`` analyses the last block's
features (PHATE, NSPS, probes) and writes the report. Then headless Chromium opens report.html
three times, each in a fresh browser: the time from navigation start until every Bokeh view has
drawn (the median is "time to first render"), and until hover drawings are unpacked. Recorded:
the HTML size and how it splits (Bokeh's JavaScript, the drawing store, everything else).
``quick``: 1,000 molecules, one opening.
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from irrepscope.bench.browser import Browser
from irrepscope.bench.record import load_average, load_note, markdown_table, publish
from irrepscope.errors import RunDirError

DEFAULT_RUN = Path("runs/demo/l03456_h16")
MOLECULES, QUICK_MOLECULES = 13_000, 1_000
OPENINGS = 3
DRAWINGS_JS = """new Promise((resolve, reject) => {
  const start = Date.now();
  const check = () => {
    for (const m of Bokeh.documents[0].all_models) {
      if (m.data && m.data.drawing && m.data.drawing.some((d) => d.length)) {
        return resolve(performance.now());
      }
    }
    if (Date.now() - start > 60000) return reject(new Error("drawings never unpacked"));
    setTimeout(check, 20);
  };
  check();
})"""


def held_out_features(run_dir: Path, count: int, seed: int = 0) -> object:
    """A ``FeatureSet`` of the run's last block on ``count`` molecules outside its train and
    validation splits (energies as targets, the model's as predictions, SMILES)."""
    from e3nn import o3

    from irrepscope.analysis.embeddings import TrainedRun, compute_embeddings
    from irrepscope.analysis.features import FeatureSet, Layer
    from irrepscope.train.run import load_run_dataset, load_run_split, load_trained_model

    if not (run_dir / "best.ckpt").exists():
        raise RunDirError(f"bench explorer needs a trained run at {run_dir} (best.ckpt); train "
                          f"the demo with `irrepscope demo` or pass --run")
    model, config = load_trained_model(run_dir)
    dataset, split = load_run_dataset(run_dir, progress=False), load_run_split(run_dir)
    seen = set(np.asarray(split.train).tolist()) | set(np.asarray(split.val).tolist())
    unseen = np.array([i for i in range(len(dataset)) if i not in seen])
    if len(unseen) < count:
        raise RunDirError(f"{run_dir}: only {len(unseen):,} molecules outside its train and "
                          f"validation splits, {count:,} wanted")
    pick = np.sort(np.random.default_rng(seed).choice(unseen, count, replace=False))
    run = TrainedRun(run_dir, model, config, pick, [dataset[int(i)] for i in pick])
    emb = compute_embeddings(run, progress=False)
    last = max(emb.joint)
    return FeatureSet([Layer(f"block{last}", emb.joint[last], o3.Irreps(emb.irreps[last]))],
                      emb.energy_true, emb.energy_pred, emb.smiles, f"{run_dir.name}_held_out")


def _sizes(html: str) -> dict[str, int]:
    """Bytes of the page: all, Bokeh's inlined JavaScript, the drawing store, PNG images."""
    from irrepscope.analysis.explorer import resources_html

    store = max((len(m) for m in re.findall(r'\["store","([A-Za-z0-9+/=]+)"\]', html)),
                default=0)
    images = sum(len(m) for m in re.findall(r"data:image/png;base64,[A-Za-z0-9+/=]+", html))
    return {"total": len(html.encode()), "bokeh_js": len(resources_html().encode()),
            "drawings": store, "png": images}


def run(quick: bool = False, record: Path | None = None, run_dir: Path | None = None) -> str:
    """Measure, print and (with ``record``) write the 'explorer' section; returns the body."""
    from irrepscope.analysis.features import analyze_features

    run_dir = Path(run_dir or DEFAULT_RUN)
    count = QUICK_MOLECULES if quick else MOLECULES
    start_load = load_average()
    with tempfile.TemporaryDirectory(prefix="irrepscope-bench-explorer-") as tmp:
        features = held_out_features(run_dir, count)
        start = time.perf_counter()
        html_path = analyze_features(features, Path(tmp) / "report", progress=False)
        analysis_s = time.perf_counter() - start
        html = html_path.read_text()
        renders, drawings = [], []
        for _ in range(1 if quick else OPENINGS):
            with Browser(width=1280, height=900, timeout=300) as browser:
                renders.append(browser.open(html_path, wait_ms=300_000))
                drawings.append(browser.evaluate(DRAWINGS_JS))
                panels = browser.scatter_panels()
                errors = browser.errors
    sizes = _sizes(html)
    mib = {k: f"{v / 2**20:.2f} MiB" for k, v in sizes.items()}
    rows = [["molecules in the explorer", f"{count:,}"],
            ["panels drawn (raw and invariant: joint and each l) with every molecule",
             f"{sum(1 for _, n, _ in panels if n == count)} of {len(panels)}"],
            ["report.html size", mib["total"]],
            ["  of which Bokeh's JavaScript (inlined once)", mib["bokeh_js"]],
            ["  of which the drawing store (gzip, base64)", mib["drawings"]],
            ["  of which static PNG figures", mib["png"]],
            ["time to first render (navigation start to every panel drawn), median",
             f"{statistics.median(renders) / 1000:.2f} s"],
            ["time until hover drawings are unpacked, median",
             f"{statistics.median(drawings) / 1000:.2f} s"],
            ["browser console errors", str(len(errors))],
            ["analysis and report writing (PHATE, probes, figures, explorer)",
             f"{analysis_s:.0f} s"]]
    body = (f"{count:,} QM9 molecules that `{run_dir}` neither trained nor validated on, its "
            f"last block analysed as a features file (`irrepscope.analysis.features`); "
            f"report.html opened in headless Chromium "
            f"{'once' if quick else f'{OPENINGS} times (fresh browser each time)'}, "
            f"1280x900 window, software rendering (--disable-gpu). "
            f"{load_note(start_load, load_average())}\n\n"
            + markdown_table(["quantity", "value"], rows))
    publish(body, record, "explorer", quick, options="" if run_dir == DEFAULT_RUN
            else f"--run {run_dir}")
    return body
