"""Operation counts: the recurrent form reproduces each order; the report files are written."""

from __future__ import annotations

import csv
from pathlib import Path

import sympy as sp

from irrepscope.sph import opcount
from irrepscope.sph.symbolic import expanded_expressions


def test_recurrence_reproduces_the_direct_expressions() -> None:
    for l in (1, 2, 3, 4):
        lower = expanded_expressions(l - 1)
        subs = {sp.Symbol(f"Y{l - 1}_{i}"): e for i, e in enumerate(lower)}
        for rec, direct in zip(opcount.recurrent_expressions(l), expanded_expressions(l),
                               strict=True):
            assert sp.expand(rec.xreplace(subs) - direct) == 0


def test_report(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(opcount, "MAX_L", 4)
    paths = opcount.write_opcount_report(tmp_path)
    assert [p.name for p in paths] == ["opcount.csv", "opcount.png"]
    rows = list(csv.DictReader(paths[0].open()))
    assert len(rows) == 25
    top = [r for r in rows if r["l"] == "4"]
    assert all(int(r["recurrent"]) > int(r["direct"]) for r in top)
    assert paths[1].stat().st_size > 1000
