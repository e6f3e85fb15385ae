"""The first look at a file: which container its bytes are in.

Several formats share a container (TorchScript, torch.export and torch.save all write zip
archives), so this first look is made once here, in the order detection has always used, and
each format's ``match`` takes the second look. Nothing here imports torch or onnx.
"""

from __future__ import annotations

import ast
import struct
import zipfile
from enum import Enum
from pathlib import Path

from studio.api import ModelFormatError, first_line

ZIP_MAGIC = b"PK\x03\x04"
HEAD_BYTES = 64
_ONNX_FIRST_BYTE = 0x08  # ModelProto field 1 (ir_version), which every writer puts first
_MAX_PYTHON_BYTES = 20 << 20


class Container(Enum):
    """How a file's bytes are packed, before anyone asks what they mean."""

    ZIP = "zip"
    SAFETENSORS = "safetensors"
    PICKLE = "pickle"  # torch.save's pre-zip format
    PROTOBUF = "protobuf"  # a message that opens with field 1 as a number: how a ModelProto starts
    TEXT = "text"
    BINARY = "binary"


class Text(Enum):
    """What a text file turned out to be."""

    PYTHON = "python"  # a model's architecture: a `.py`, or any Python that defines build_model()
    PLAIN = "plain"
    UNREADABLE = "unreadable"  # too large to be source, or not UTF-8


def check_is_file(path: Path) -> None:
    """Refuse, in words, anything that is not a non-empty regular file."""
    if not path.exists():
        raise ModelFormatError(f"{path} does not exist")
    if path.is_dir():
        raise ModelFormatError(f"{path} is a folder; name the model file inside it")
    if not path.is_file():
        raise ModelFormatError(f"{path} is not a regular file")
    if path.stat().st_size == 0:
        raise ModelFormatError(f"{path.name} is empty")


def read_head(path: Path) -> bytes:
    """The first bytes of a file: enough for every signature the formats look at."""
    with path.open("rb") as f:
        return f.read(HEAD_BYTES)


def container(path: Path, head: bytes) -> Container:
    """The container, tried in a fixed order: a signature earlier in the list wins over a later one."""
    if head.startswith(ZIP_MAGIC):
        return Container.ZIP
    if _looks_like_safetensors(path, head):
        return Container.SAFETENSORS
    if _looks_like_torch_pickle(head):
        return Container.PICKLE
    if head[:1] == bytes([_ONNX_FIRST_BYTE]):
        return Container.PROTOBUF
    if head and b"\x00" not in head:
        return Container.TEXT
    return Container.BINARY


def zip_tails(path: Path) -> set[str]:
    """The member names of a zip archive below its one top folder, where torch's formats differ."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelFormatError(f"{path.name} is a damaged zip archive (truncated?): {exc}") from None
    return {name.split("/", 1)[-1] for name in names}


def _looks_like_safetensors(path: Path, head: bytes) -> bool:
    if len(head) < 9:
        return False
    (header_len,) = struct.unpack("<Q", head[:8])
    return 0 < header_len <= path.stat().st_size - 8 and head[8:9] == b"{"


def _looks_like_torch_pickle(head: bytes) -> bool:
    """torch.save's pre-zip format: a pickle (protocol 2+) that opens with torch's magic number."""
    return len(head) > 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def classify_text(path: Path) -> Text:
    """Python source or plain text, read without running anything.

    A `.py` that does not parse is refused here: it claims to be source, and the line of the
    mistake is what its author needs.
    """
    if path.stat().st_size > _MAX_PYTHON_BYTES:
        return Text.UNREADABLE
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return Text.UNREADABLE
    try:
        tree = ast.parse(source, filename=path.name)
    except (SyntaxError, ValueError) as exc:
        if path.suffix.lower() == ".py":
            where = f" (line {exc.lineno})" if getattr(exc, "lineno", None) else ""
            reason = getattr(exc, "msg", None) or first_line(exc)
            raise ModelFormatError(f"{path.name} is not valid Python{where}: {reason}") from None
        return Text.PLAIN
    if path.suffix.lower() == ".py" or "build_model" in top_level_names(tree):
        return Text.PYTHON
    return Text.PLAIN


def top_level_names(tree: ast.Module) -> set[str]:
    """Names a module binds at its top level, read without running it."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names
