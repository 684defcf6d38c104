"""Model files: the family read from the contents without unpickling; one clear line for a
file of no known family, a truncated file, a compiled model, an irrepscope checkpoint, a wrong
--family, a missing package, and a file loaded without --trust-model-code."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
import torch

from irrepscope.analysis import adapters
from irrepscope.errors import ConfigError, DataError


def _torch_file(path: Path, payload: object) -> Path:
    torch.save(payload, path)
    return path


def _fake_pickle(path: Path, marker: bytes) -> Path:
    """A torch-style zip whose data.pkl contains ``marker`` (never unpickled by detection)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{path.stem}/data.pkl", b"\x80\x02c" + marker + b"\nX\nq\x00.")
        archive.writestr(f"{path.stem}/version", b"3\n")
    return path


@pytest.mark.parametrize(("marker", "family", "kind"), [
    (b"mace.modules.models", "mace", "model"),
    (b"allegro.model", "allegro", "checkpoint"),
    (b"nequip.train.lightning", "nequip", "checkpoint"),
])
def test_family_read_from_the_pickle(tmp_path, marker, family, kind) -> None:
    found = adapters.inspect_model_file(_fake_pickle(tmp_path / "m.model", marker))
    assert (found.family, found.kind) == (family, kind)


def test_nequip_package_is_recognised(tmp_path) -> None:
    path = tmp_path / "m.nequip.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("m/model/package_metadata.txt", "package_version_id: 1\n")
        archive.writestr("m/allegro/model/allegro_models.py", "")
    assert adapters.inspect_model_file(path).family == "allegro"


def test_bad_model_files(tmp_path) -> None:
    empty = tmp_path / "empty.model"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="is empty"):
        adapters.inspect_model_file(empty)
    whole = _fake_pickle(tmp_path / "whole.model", b"mace.modules")
    truncated = tmp_path / "cut.model"
    truncated.write_bytes(whole.read_bytes()[:60])
    with pytest.raises(DataError, match="truncated or damaged"):
        adapters.inspect_model_file(truncated)
    text = tmp_path / "notes.model"
    text.write_text("hello")
    with pytest.raises(DataError, match="not a zip archive"):
        adapters.inspect_model_file(text)
    with pytest.raises(DataError, match="not a model file irrepscope knows"):
        adapters.inspect_model_file(_torch_file(tmp_path / "t.pt", {"w": torch.ones(2)}))
    with pytest.raises(DataError, match="does not exist"):
        adapters.inspect_model_file(tmp_path / "missing.model")


def test_compiled_and_irrepscope_files(tmp_path) -> None:
    scripted = torch.jit.script(torch.nn.Linear(2, 2))
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    compiled = tmp_path / "m_compiled.model"
    compiled.write_bytes(buffer.getvalue())
    with pytest.raises(DataError, match="compiled \\(TorchScript\\)"):
        adapters.inspect_model_file(compiled)
    own = _torch_file(tmp_path / "best.ckpt", {"state_dict": {}, "irrepscope_sha256": "x"})
    with pytest.raises(DataError, match="irrepscope analyze RUN_DIR"):
        adapters.inspect_model_file(own)


def test_family_flag_package_and_trust(tmp_path, monkeypatch) -> None:
    path = _fake_pickle(tmp_path / "m.model", b"mace.modules")
    with pytest.raises(DataError, match="--family nequip, but .* looks like a MACE model"):
        adapters.resolve_family(path, "nequip")
    monkeypatch.setattr(adapters, "installed_version", lambda family: None)
    with pytest.raises(ConfigError, match=r"no mace-torch: pip install 'irrepscope\[mace\]'"):
        adapters.resolve_family(path)
    monkeypatch.setattr(adapters, "installed_version", lambda family: "0.3.16")
    with pytest.raises(ConfigError, match="runs Python code .* add --trust-model-code"):
        adapters.load_model_file(path)
