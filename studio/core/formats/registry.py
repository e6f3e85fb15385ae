"""Each :class:`ModelFormat` to the module that opens it, and the questions asked of all of them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from studio.api import ModelFormatError
from studio.core.formats import architecture, exported_program, onnx_format, pickled_module, torchscript
from studio.core.model_files import ModelFiles, ModelFormat

if TYPE_CHECKING:
    import torch


class FormatModule(Protocol):
    """What every format module offers (see the package's docstring)."""

    FORMAT: ModelFormat

    def match(self, path: Path, head: bytes) -> bool: ...

    def open(self, files: ModelFiles, *, trusted: bool) -> Any: ...

    def runs_code(self, files: ModelFiles) -> bool: ...


FORMATS: dict[ModelFormat, FormatModule] = {
    module.FORMAT: module
    for module in (onnx_format, torchscript, exported_program, architecture, pickled_module)
}


def code_bearing_files(files: ModelFiles) -> list[Path]:
    """The files of a model that run code when loaded, and so need the user's trust.

    TorchScript always does: loading an archive runs its scripted classes' ``__setstate__``.
    """
    return [files.main] if FORMATS[files.format].runs_code(files) else []


def load_torch_module(files: ModelFiles, *, trusted: bool) -> torch.nn.Module:
    """The model as an eval-mode torch module; code from the file runs only when ``trusted``."""
    if not files.format.is_torch:
        raise ModelFormatError(f"{files.main.name} is an ONNX model, not a PyTorch one")
    return FORMATS[files.format].open(files, trusted=trusted)
