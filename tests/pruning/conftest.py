"""Pruning tests: one intra-op thread (the tiny QM9 run is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_thread_for_pruning(one_thread: None) -> Iterator[None]:
    """Every pruning test runs with one intra-op thread (``one_thread`` in tests/conftest.py)."""
    yield
