"""irrepscope's own loads stay weights-only when another package (MACE does, on import) sets
TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1, and importing irrepscope changes no torch setting."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from irrepscope.data import cache
from irrepscope.errors import RunDirError
from irrepscope.train.run_records import load_checkpoint


class _Payload:
    """Unpickling this writes a marker file: the signature of code run by a full unpickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


@pytest.fixture
def hostile_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(a torch file that runs code when fully unpickled, the marker it would write), with the
    environment variable set as `import mace` sets it."""
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "marker.txt"
    path = tmp_path / "hostile.ckpt"
    torch.save({"state_dict": {}, "meta": "{}", "key": "", "payload": _Payload(marker)}, path,
               pickle_protocol=pickle.HIGHEST_PROTOCOL)
    return path, marker


def test_checkpoint_load_refuses_code_under_the_variable(hostile_checkpoint) -> None:
    path, marker = hostile_checkpoint
    with pytest.raises(RunDirError, match="can run code"):
        load_checkpoint(path)
    assert not marker.exists()


def test_cache_load_refuses_code_under_the_variable(hostile_checkpoint, capsys) -> None:
    path, marker = hostile_checkpoint
    assert cache.load(path, "key", {}) is None  # treated as corrupt, rebuilt
    assert "corrupt" in capsys.readouterr().err
    assert not marker.exists()


def test_lightning_load_with_weights_only_refuses_code(hostile_checkpoint) -> None:
    """What ``Trainer.fit/test(..., weights_only=True)`` in ``train/run.py`` calls."""
    from lightning.fabric.utilities.cloud_io import _load

    path, marker = hostile_checkpoint
    with pytest.raises(pickle.UnpicklingError):
        _load(path, weights_only=True)
    assert not marker.exists()


def test_import_changes_no_torch_setting() -> None:
    """A fresh interpreter: importing irrepscope (and, under e3nn 0.4.4, e3nn through it) adds
    nothing to torch's weights-only allowlist or the environment beyond what its dependencies
    do on their own import (e3nn 0.6 and torch_geometric extend the allowlist themselves)."""
    code = ("import os, torch, lightning, rdkit.Chem, sklearn, torch_geometric\n"
            "from irrepscope.e3nn_import import needs_allowlisted_import\n"
            "if not needs_allowlisted_import(): import e3nn.o3\n"
            "before = list(torch.serialization.get_safe_globals()); env = dict(os.environ)\n"
            "import irrepscope.analysis.features\n"
            "assert list(torch.serialization.get_safe_globals()) == before\n"
            "assert slice not in torch.serialization.get_safe_globals()\n"
            "assert dict(os.environ) == env, set(os.environ) ^ set(env)\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
