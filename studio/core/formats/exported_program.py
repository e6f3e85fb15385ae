"""torch.export `.pt2` archives: opened as the program's module, code-bearing beyond the plain layout.

A plain `.pt2` is JSON and raw tensor bytes, and opens without trust. An archive may also carry
native code (AOTInductor's shared libraries, which load runs), pickled tensors, script objects and
arbitrary pickled constants, which torch reads with the full unpickler (and falls back to it for
sample inputs): any of those makes the file code-bearing.
"""

from __future__ import annotations

import io
import json
import re
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.api import ModelFormatError, first_line
from studio.core.formats.content import Container, container, zip_tails
from studio.core.formats.origins import Origin, remember
from studio.core.formats.untrusted import untrusted_error
from studio.core.model_files import ModelFiles, ModelFormat

if TYPE_CHECKING:
    import torch

FORMAT = ModelFormat.EXPORTED_PROGRAM

# torch.export.load unpickles these without the safe loader; plain exports have none of them.
_PROGRAM_OBJECT_PREFIXES = ("custom_obj_", "opaque_obj_")

# The members of a plain torch.export archive, below its one top folder. Anything else (AOTInductor
# or ExecuTorch payloads, native libraries, files of unknown purpose) is treated as code.
_PROGRAM_LAYOUT = re.compile(
    r"archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id"
    r"|models/[^/]+\.json|extra/[^/]+\.json"
    r"|data/weights/(?:weight_\d+|[^/]+_weights_config\.json)"
    r"|data/constants/(?:tensor_\d+|[^/]+_constants_config\.json)"
    r"|data/sample_inputs/[^/]+\.pt"
)


def match(path: Path, head: bytes) -> bool:
    """A zip archive with torch.export's own markers (its format file, or a serialized model)."""
    return container(path, head) is Container.ZIP and is_program_layout(zip_tails(path))


def is_program_layout(tails: set[str]) -> bool:
    """Whether zip members (named below the top folder) are torch.export's: it wins over TorchScript."""
    return "archive_format" in tails or any(t.startswith("models/") and t.endswith(".json") for t in tails)


def open(files: ModelFiles, *, trusted: bool) -> torch.nn.Module:
    """The program's module, left as exported: it is exported for inference already, and torch
    refuses ``eval()`` on it. Its example inputs are remembered for describing its inputs."""
    if not trusted and runs_code(files):
        raise untrusted_error(files.main, files.format)
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.load(str(files.main))
            module = program.module()
    except Exception as exc:
        raise ModelFormatError(
            f"{files.main.name} is a damaged torch.export file: {first_line(exc)}"
        ) from None
    remember(module, Origin(example=_program_example(program), dynamic_batch=_program_batch_is_free(program)))
    return module


def _program_example(program: Any) -> tuple | None:
    example = program.example_inputs
    if not example:
        return None
    args, kwargs = example
    return tuple(args) if not kwargs else None


def _program_batch_is_free(program: Any) -> bool:
    """An exported program accepts other batch sizes only when it was exported with a symbolic dim 0."""
    import torch

    user_inputs = set(program.graph_signature.user_inputs)
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in user_inputs:
            value = node.meta.get("val")
            shape = getattr(value, "shape", ())
            if not shape or not isinstance(shape[0], torch.SymInt):
                return False
    return True


def runs_code(files: ModelFiles) -> bool:
    """Whether torch.export.load would run anything but the safe loader on this archive.

    A member outside the plain layout makes the file code-bearing; each pickled payload inside
    it is checked.
    """
    path = files.main
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if any(not _PROGRAM_LAYOUT.fullmatch(name.split("/", 1)[-1]) for name in names):
                return True
            return any(_member_runs_code(archive, name) for name in names)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, AttributeError) as exc:
        raise ModelFormatError(f"{path.name} is a damaged torch.export file: {first_line(exc)}") from None


def _member_runs_code(archive: zipfile.ZipFile, name: str) -> bool:
    tail = name.split("/", 1)[-1]
    if tail.endswith(".pt"):
        return not _is_safe_pickle(archive.read(name))
    if not (tail.startswith("data/") and tail.endswith("_config.json")):
        return False
    folder = name.rsplit("/", 1)[0]
    for meta in json.loads(archive.read(name)).get("config", {}).values():
        path_name = meta.get("path_name", "")
        if path_name.startswith(_PROGRAM_OBJECT_PREFIXES):
            return True
        if meta.get("use_pickle") and not _is_safe_pickle(archive.read(f"{folder}/{path_name}")):
            return True
    return False


def _is_safe_pickle(data: bytes) -> bool:
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception:
        return False
    return True
