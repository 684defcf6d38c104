"""Reports in a real headless Chromium: they load without errors, the verdict comes first, the
explorer draws every molecule in every panel and hovering a point shows its SMILES and drawing,
and the page fits a phone's width. Skipped, saying how to install it, without Chromium."""

from __future__ import annotations

import json
import time

import pytest

from irrepscope.analysis import report
from irrepscope.bench.browser import INSTALL_HINT, Browser, find_chromium

pytestmark = pytest.mark.skipif(find_chromium() is None,
                                reason=f"no Chromium for the browser tests: {INSTALL_HINT}")

# viewport coordinates of point i of the panel titled t (scrolled into view), the molecule's
# SMILES and drawing
POINT_JS = """(() => {
  for (const pv of Object.values(Bokeh.index)) {
    if (!pv.renderer_views || !pv.model.title || pv.model.title.text !== %s) continue;
    for (const rv of pv.renderer_views.values()) {
      if (!rv.glyph || rv.glyph.data_size < 2) continue;
      pv.canvas_view.el.scrollIntoView({block: "center"});
      const c = pv.canvas_view.el.getBoundingClientRect(), d = rv.model.data_source.data;
      return [c.x + rv.glyph.sx[%d], c.y + rv.glyph.sy[%d], d.smiles[%d], d.drawing[%d]];
    }
  }
  return null;
})()"""
TOOLTIP_JS = """(() => {
  const out = [];
  const walk = (root) => { for (const el of root.querySelectorAll("*")) {
    if (el.shadowRoot) walk(el.shadowRoot);
    if (String(el.className).includes("bk-tooltip-content")) out.push(el.innerHTML);
  } };
  walk(document);
  return out;
})()"""
FIRST_JS = ("[...document.body.children].slice(0, 2).map((e) => e.tagName + '#' + e.id)")


def _check_explorer(browser: Browser, title: str, molecules: int, panels: int) -> None:
    drawn = browser.scatter_panels()
    assert len(drawn) == panels and {n for _, n, _ in drawn} == {molecules}, drawn
    assert len({source for _, _, source in drawn}) == 1  # one source: linked selection
    deadline = time.monotonic() + 10
    while True:  # the drawings are unpacked after the first render
        x, y, smiles, drawing = browser.evaluate(POINT_JS % (json.dumps(title), 3, 3, 3, 3))
        if "<svg" in drawing or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert "<svg" in drawing
    browser.move_mouse(x, y)
    for _ in range(50):
        shown = browser.evaluate(TOOLTIP_JS)
        if any(smiles in text for text in shown):
            break
        time.sleep(0.1)
    assert any(smiles in text and "<svg" in text for text in shown), shown


def test_run_and_comparison_reports_in_chromium(fake_runs, tmp_path) -> None:
    run_html = report.analyze_run(fake_runs[0], progress=False)
    compare_html = report.compare_runs(fake_runs, tmp_path / "cmp", progress=False)
    with Browser(width=1280, height=900) as browser:
        browser.open(run_html)
        assert browser.evaluate(FIRST_JS) == ["H1#", "SECTION#verdict"]
        _check_explorer(browser, "raw joint", 40, 8)  # raw and invariant x (joint, l=0, 1, 2)
        browser.resize(390, 800)  # a phone: the page itself never scrolls sideways
        assert browser.evaluate("document.documentElement.scrollWidth") <= 390
        browser.resize(1280, 900)
        browser.open(compare_html)
        assert browser.evaluate(FIRST_JS) == ["H1#", "SECTION#verdict"]
        _check_explorer(browser, "run_b: invariant l=1", 40, 16)  # both runs, one source
        assert browser.errors == []
