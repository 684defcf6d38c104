"""The accuracy harness: an independent 50-digit oracle, exact inputs, and the written report."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from e3nn import o3

if not torch.cuda.is_available():  # the triton rows run in Triton's interpreter on CPU
    os.environ["TRITON_INTERPRET"] = "1"

from irrepscope.sph import accuracy  # noqa: E402


def test_oracle_matches_e3nn_in_float64() -> None:
    vectors = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    vectors[0] = torch.tensor([0.0, 1.0, 0.0])  # the pole, where the azimuth is undefined
    exact = accuracy.oracle_values(vectors)
    reference = o3.spherical_harmonics(list(range(11)), vectors, True, "component")
    torch.testing.assert_close(exact, reference, atol=1e-12, rtol=0)


def test_directions_are_exact_in_every_dtype() -> None:
    directions = accuracy.accuracy_directions(300, seed=1)
    assert directions.shape == (300, 3)
    assert (directions.norm(dim=-1) > 0).all()
    for dtype in accuracy.DTYPES.values():
        assert torch.equal(directions.to(dtype).to(torch.float64), directions)


def test_report_files_and_targets(tmp_path: Path) -> None:
    paths = accuracy.write_accuracy_report(tmp_path, num_vectors=24)
    assert sorted(p.name for p in paths) == ["accuracy.csv", "accuracy.md", "accuracy.png"]
    assert all(p.stat().st_size > 0 for p in paths)
    text = (tmp_path / "accuracy.md").read_text()
    assert "## Per order" in text and "## Agreement between backends" in text
    rows = (tmp_path / "accuracy.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 * 4 * 11  # header + backend x dtype x l
    stats = [line.split(",") for line in rows[1:]]
    by = {(b, d, int(l)): float(max_abs) for b, d, l, _, max_abs, *_ in stats}
    for backend in ("torch", "triton"):
        assert max(v for (b, d, _), v in by.items() if b == backend and d == "float64") < 1e-12
        assert max(v for (b, d, _), v in by.items() if b == backend and d == "float32") < 5e-6


def test_bad_vector_count() -> None:
    with pytest.raises(ValueError, match="positive"):
        accuracy.measure_accuracy(0)
