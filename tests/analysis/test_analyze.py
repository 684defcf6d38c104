"""Panel parsing and the quadrant/panel choices of the analysis pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from irrepscope.analysis import analyze
from irrepscope.analysis.projection import Projection
from irrepscope.errors import ConfigError


def test_parse_panel() -> None:
    assert analyze.parse_panel("l=4", [0, 4]) == ("invariant", "l=4")
    assert analyze.parse_panel("raw:joint", [0, 4]) == ("raw", "joint")
    assert analyze.parse_panel("raw:4", [0, 4]) == ("raw", "l=4")


@pytest.mark.parametrize("bad", ["invariant:l=7", "sideways:l=0", "l=x", ""])
def test_parse_panel_rejects(bad: str) -> None:
    with pytest.raises(ConfigError, match="--panel"):
        analyze.parse_panel(bad, [0, 4])


def test_default_panel_is_the_most_structured_used_l() -> None:
    rows = [{"l": 0, "nsps_consistency_invariant": 0.2},
            {"l": 1, "nsps_consistency_invariant": 0.5},
            {"l": 2, "nsps_consistency_invariant": 0.1},
            {"l": 3, "nsps_consistency_invariant": 0.9}]
    ok = Projection("p", np.zeros((5, 2)), "ok")
    proj = {("invariant", f"l={l}"): ok for l in range(4)}
    proj[("invariant", "l=2")] = Projection("p", None, "unused")
    assert analyze._default_panel(rows, proj) == "invariant:l=1"
    unused = {k: Projection("p", None, "unused") for k in proj}
    assert analyze._default_panel(rows, unused) == "invariant:l=0"


def test_default_panel_passes_over_switched_off_orders() -> None:
    rows = [{"l": 0, "nsps_consistency_invariant": 0.2, "switched_off": False},
            {"l": 1, "nsps_consistency_invariant": 0.5, "switched_off": False},
            {"l": 2, "nsps_consistency_invariant": 0.1, "switched_off": True}]
    ok = Projection("p", np.zeros((5, 2)), "ok")
    proj = {("invariant", f"l={l}"): ok for l in range(3)}
    assert analyze._default_panel(rows, proj) == "invariant:l=1"
