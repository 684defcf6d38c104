"""Fixtures of the data tests: small QM9-format CSV folders written by the tests themselves."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The helpers module sits next to this file; importable in every pytest import mode.
sys.path.insert(0, str(Path(__file__).parent))
from qm9_files import basic_rows, write_part  # noqa: E402

from irrepscope.data.qm9 import qm9pack_dir  # noqa: E402


@pytest.fixture
def qm9_dir(tmp_path: Path) -> Path:
    """A folder with qm9_part1.csv holding methane, ammonia and water."""
    folder = tmp_path / "qm9"
    folder.mkdir()
    write_part(folder / "qm9_part1.csv", basic_rows())
    return folder


@pytest.fixture(scope="session")
def qm9_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the first 600 real molecules of each qm9pack part (as qm9_part1..3)."""
    folder = tmp_path_factory.mktemp("qm9slice")
    for n in (1, 2, 3):
        with open(qm9pack_dir() / f"qm9_part{n}.csv") as fin, \
                open(folder / f"qm9_part{n}.csv", "w") as fout:
            for i, line in enumerate(fin):
                if i > 600:
                    break
                fout.write(line)
    return folder
