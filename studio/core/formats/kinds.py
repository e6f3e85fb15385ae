"""What a file holds, told by trying each format's ``match`` in a fixed order.

Wider than :class:`ModelFormat`: weights files and files that are no model at all have a kind
too, so that a refusal can say what the user gave instead of only what was wanted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from studio.core.formats import (
    exported_program,
    onnx_format,
    pickled_module,
    safetensors_format,
    state_dict,
    torchscript,
)
from studio.core.formats.content import Container, Text, check_is_file, classify_text, container, read_head

if TYPE_CHECKING:
    import onnx


class Kind(str, Enum):
    ONNX = "onnx"
    TORCHSCRIPT = "torchscript"
    EXPORTED_PROGRAM = "exported_program"
    TORCH_PICKLE = "torch_pickle"
    PYTHON = "python"
    STATE_DICT = "state_dict"
    SAFETENSORS = "safetensors"
    OTHER_ZIP = "other_zip"
    TEXT = "text"
    UNKNOWN = "unknown"


# How a refusal names what a file turned out to be.
WORDS = {
    Kind.ONNX: "it is an ONNX model",
    Kind.TORCHSCRIPT: "it is a zip archive (a PyTorch file?)",
    Kind.EXPORTED_PROGRAM: "it is a zip archive (a PyTorch file?)",
    Kind.TORCH_PICKLE: "it holds pickled Python objects, not only tensors",
    Kind.STATE_DICT: "it is a PyTorch weights file",
    Kind.OTHER_ZIP: "it is a zip archive",
    Kind.SAFETENSORS: "it is a safetensors weights file",
    Kind.PYTHON: "it is Python source code",
    Kind.TEXT: "it is a text file",
    Kind.UNKNOWN: "its content is not a model format the studio reads",
}


def _is_python(path: Path, head: bytes) -> bool:
    """The architecture format's match, repeated here because that format reads weights through
    :func:`identify`; see :func:`studio.core.formats.architecture.match`."""
    return container(path, head) is Container.TEXT and classify_text(path) is Text.PYTHON


# Most specific first. A state_dict is asked before a pickled module: for a weights file that is
# one read by the safe loader, and for a module both reads stop at its first class name.
_MATCHERS: tuple[tuple[Kind, Callable[[Path, bytes], bool]], ...] = (
    (Kind.EXPORTED_PROGRAM, exported_program.match),
    (Kind.TORCHSCRIPT, torchscript.match),
    (Kind.STATE_DICT, state_dict.match),
    (Kind.TORCH_PICKLE, pickled_module.match),
    (Kind.SAFETENSORS, safetensors_format.match),
    (Kind.ONNX, onnx_format.match),
    (Kind.PYTHON, _is_python),
)


@dataclass
class Found:
    kind: Kind
    onnx_model: onnx.ModelProto | None = None  # parsed without external data, when ONNX


def identify(path: Path) -> Found:
    """The kind of a file, from its content alone; a damaged file of a known format is refused."""
    check_is_file(path)
    head = read_head(path)
    for kind, match in _MATCHERS:
        if match(path, head):
            return Found(kind, onnx_format.read_proto(path) if kind is Kind.ONNX else None)
    return Found(_no_model_kind(path, head))


def _no_model_kind(path: Path, head: bytes) -> Kind:
    found = container(path, head)
    if found is Container.ZIP:
        return Kind.OTHER_ZIP
    if found is Container.TEXT and classify_text(path) is Text.PLAIN:
        return Kind.TEXT
    return Kind.UNKNOWN
