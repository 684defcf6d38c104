"""The seeded QM9 sample: right size, original lines and order, deterministic, readable."""

from __future__ import annotations

from pathlib import Path

import pytest

from irrepscope.data.qm9 import read_qm9
from irrepscope.data.sample import write_qm9_sample
from irrepscope.errors import DataError


def _lines(folder: Path) -> list[str]:
    return [line for n in (1, 2, 3) for line in (folder / f"qm9_part{n}.csv").read_text()
            .splitlines()[1:]]


def test_sample_is_a_seeded_ordered_subset_of_the_source_lines(qm9_slice: Path,
                                                               tmp_path: Path) -> None:
    source = _lines(qm9_slice)
    first = write_qm9_sample(tmp_path / "a", 250, seed=3, qm9_dir=qm9_slice)
    again = write_qm9_sample(tmp_path / "b", 250, seed=3, qm9_dir=qm9_slice)
    other = write_qm9_sample(tmp_path / "c", 250, seed=4, qm9_dir=qm9_slice)
    sample = _lines(first)
    assert len(sample) == 250 and len(set(sample)) == 250
    positions = [source.index(line) for line in sample]
    assert positions == sorted(positions)
    assert _lines(again) == sample and _lines(other) != sample
    header = (qm9_slice / "qm9_part2.csv").read_text().splitlines()[0]
    assert (first / "qm9_part2.csv").read_text().splitlines()[0] == header
    molecules = read_qm9(first, progress=False)
    assert len(molecules.counts) == 250 and not molecules.problems
    assert sorted(molecules.idx.tolist()) == molecules.idx.tolist()


def test_sample_size_out_of_range_is_one_clear_error(qm9_slice: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="--molecules must be between 1 and 1800"):
        write_qm9_sample(tmp_path / "a", 5000, qm9_dir=qm9_slice)
