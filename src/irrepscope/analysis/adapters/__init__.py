"""Adapters that put other libraries' equivariant models through irrepscope's analysis: one
module per family (``mace``, ``nequip``, ``allegro``) behind ``hooks.ModelAdapter``; this module
tells a model file's family from its contents without unpickling it, and loads it.

Every family's files are pickles that run code when loaded (MACE saves whole modules; nequip's
loader unpickles checkpoints fully and packages carry code), so ``load_model_file`` refuses
unless the caller passes ``trust_code=True`` (the CLI's ``--trust-model-code``).
"""

from __future__ import annotations

import importlib.util
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from irrepscope.errors import ConfigError, DataError

FAMILIES = ("mace", "nequip", "allegro")
_PACKAGES = {"mace": ("mace", "mace-torch"), "nequip": ("nequip", "nequip"),
             "allegro": ("allegro", "nequip-allegro")}
INSTALL = {
    "mace": "pip install 'irrepscope[mace]' (mace-torch 0.3.16, which needs e3nn 0.4.4: an "
            "environment of its own, apart from nequip's)",
    "nequip": "pip install 'irrepscope[nequip]' (nequip 0.19)",
    "allegro": "pip install 'irrepscope[allegro]' (nequip 0.19 and nequip-allegro 0.8)",
}
NAMES = {"mace": "MACE", "nequip": "NequIP", "allegro": "Allegro"}
KNOWN = "a MACE .model, a nequip / Allegro checkpoint (.ckpt) or package (.nequip.zip)"


@dataclass(frozen=True)
class ModelFile:
    """What a model file looks like: its family and kind (model, checkpoint or package)."""

    path: Path
    family: str
    kind: str

    @property
    def looks_like(self) -> str:
        """'a MACE model', 'an Allegro checkpoint', ..."""
        name = NAMES[self.family]
        return f"{'an' if name[0] in 'AEIOU' else 'a'} {name} {self.kind}"


def _archive_names(path: Path) -> tuple[list[str], bytes]:
    """(member names, the pickle of a torch zip archive or b''); DataError when unreadable."""
    if not path.is_file():
        raise DataError(f"model file {path} does not exist")
    if path.stat().st_size == 0:
        raise DataError(f"model file {path} is empty (0 bytes)")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
            return names, archive.read(pickles[0]) if pickles else b""
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        with open(path, "rb") as handle:
            zip_start = handle.read(4) == b"PK\x03\x04"
        why = "truncated or damaged" if zip_start else "not a zip archive"
        raise DataError(f"{path} cannot be read as a model file ({why}: {err}); expected "
                        f"{KNOWN}") from None


def inspect_model_file(path: str | Path) -> ModelFile:
    """The family and kind of a model file, read from its member names and the class names in
    its pickle (never unpickled); one ``DataError`` naming what the file looks like otherwise."""
    path = Path(path)
    names, pickle_bytes = _archive_names(path)
    if any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names):
        raise DataError(f"{path} is a compiled (TorchScript) model: forward hooks cannot reach "
                        f"its layers; give the file training wrote before compiling (MACE: the "
                        f".model without _compiled; nequip / Allegro: the .ckpt)")
    if any(n.endswith("package_metadata.txt") for n in names):
        allegro = any("/allegro/" in n for n in names)
        return ModelFile(path, "allegro" if allegro else "nequip", "package")
    if b"irrepscope_sha256" in pickle_bytes:
        raise DataError(f"{path} is an irrepscope checkpoint: analyse its run directory with "
                        f"`irrepscope analyze RUN_DIR`")
    if b"mace.modules" in pickle_bytes:
        return ModelFile(path, "mace", "model")
    if b"allegro.model" in pickle_bytes:
        return ModelFile(path, "allegro", "checkpoint")
    if b"nequip" in pickle_bytes:
        return ModelFile(path, "nequip", "checkpoint")
    raise DataError(f"{path} is not a model file irrepscope knows; expected {KNOWN}")


def installed_version(family: str) -> str | None:
    """The installed version of a family's package, or None when it is not importable."""
    module, distribution = _PACKAGES[family]
    if importlib.util.find_spec(module) is None:
        return None
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


def resolve_family(path: str | Path, family: str | None = None) -> ModelFile:
    """The inspected file, checked against ``--family`` and against what is installed."""
    if family is not None and family not in FAMILIES:
        raise ConfigError(f"--family {family!r}: use one of {', '.join(FAMILIES)}")
    found = inspect_model_file(path)
    if family is not None and family != found.family:
        raise DataError(f"--family {family}, but {found.path} looks like {found.looks_like}; "
                        f"drop --family (the family is read from the file)")
    if installed_version(found.family) is None:
        raise ConfigError(f"{found.path} looks like {found.looks_like}, and this "
                          f"environment has no {_PACKAGES[found.family][1]}: "
                          f"{INSTALL[found.family]}")
    return found


def load_model_file(path: str | Path, family: str | None = None, trust_code: bool = False):
    """(``ModelAdapter`` of the model in ``path``, its ``ModelFile``); see the module
    docstring for ``trust_code``. Loader failures become one ``DataError`` with the versions."""
    found = resolve_family(path, family)
    if not trust_code:
        raise ConfigError(f"{found.path} is {found.looks_like}: loading it runs "
                          f"Python code stored in the file (a full pickle), which can do "
                          f"anything; if you trust where it came from, add --trust-model-code")
    try:
        if found.family == "mace":
            from irrepscope.analysis.adapters.mace import MACEAdapter, load_mace_file

            return MACEAdapter(load_mace_file(found.path), str(found.path)), found
        from irrepscope.analysis.adapters.nequip import NequIPAdapter, load_nequip_file

        model = load_nequip_file(found.path)
        if found.family == "allegro":
            from irrepscope.analysis.adapters.allegro import AllegroAdapter

            return AllegroAdapter(model, str(found.path)), found
        return NequIPAdapter(model, str(found.path)), found
    except DataError:
        raise
    except Exception as err:  # the family's loader: version mismatches, truncated members
        versions = ", ".join(f"{_PACKAGES[f][1]} {installed_version(f)}" for f in FAMILIES
                             if installed_version(f) is not None)
        e3nn = metadata.version("e3nn")
        raise DataError(f"{found.path} looks like {found.looks_like} but could not "
                        f"be loaded ({type(err).__name__}: {str(err)[:200]}); this environment "
                        f"has {versions}, e3nn {e3nn}: load it where it was trained (same "
                        f"{_PACKAGES[found.family][1]} and e3nn versions)") from None
