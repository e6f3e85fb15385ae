"""Which model a file is, and which files make it up, refusing anything that cannot stand as one.

The formats recognise their files by content (:mod:`studio.core.formats.kinds`); what is added
here is what a user is told: an extension that promises another format, a weights file given
where a model was wanted, and the side files a model needs beside it.
"""

from __future__ import annotations

from pathlib import Path

from studio.api import ModelFormatError
from studio.core.formats import architecture, onnx_format
from studio.core.formats.kinds import WORDS, Found, Kind, identify
from studio.core.model_files import ModelFiles, ModelFormat

_FORMATS_READ = "ONNX, TorchScript, torch.export .pt2, a pickled PyTorch module or an architecture .py"

_KIND_FORMAT = {
    Kind.ONNX: ModelFormat.ONNX,
    Kind.TORCHSCRIPT: ModelFormat.TORCHSCRIPT,
    Kind.EXPORTED_PROGRAM: ModelFormat.EXPORTED_PROGRAM,
    Kind.TORCH_PICKLE: ModelFormat.TORCH_PICKLE,
    Kind.PYTHON: ModelFormat.TORCH_ARCHITECTURE,
}

# Extensions that make a promise about the content; others (.pt, .pth, .bin) promise nothing.
_EXTENSION_CLAIMS = {
    ".onnx": (Kind.ONNX, "an ONNX model"),
    ".py": (Kind.PYTHON, "a Python architecture file"),
    ".safetensors": (Kind.SAFETENSORS, "a safetensors file"),
}


def detect_format(path: Path) -> ModelFormat:
    """Say what a model file is by reading it; refuse anything that cannot stand as a model alone."""
    return _detect(Path(path))[0]


def _detect(path: Path) -> tuple[ModelFormat, Found]:
    found = identify(path)
    _check_extension(path, found.kind)
    if found.kind in (Kind.STATE_DICT, Kind.SAFETENSORS):
        raise ModelFormatError(
            f"{path.name} holds only weights; import it with its architecture file: "
            f"studio import ARCH.py --weights {path.name}"
        )
    if found.kind not in _KIND_FORMAT:
        raise ModelFormatError(
            f"{path.name} is not a model the studio reads ({_FORMATS_READ}): {WORDS[found.kind]}"
        )
    return _KIND_FORMAT[found.kind], found


def _check_extension(path: Path, kind: Kind) -> None:
    """An extension that names another format is a mistake worth naming (a renamed file, a wrong pick)."""
    claim = _EXTENSION_CLAIMS.get(path.suffix.lower())
    if claim is None or claim[0] == kind:
        return
    if claim[0] is Kind.ONNX and kind is Kind.UNKNOWN:
        raise ModelFormatError(
            f"{path.name} is not an ONNX model: its content is not ONNX (nor any model format)"
        )
    raise ModelFormatError(f"{path.name} is not {claim[1]}: {WORDS[kind]}")


def collect_files(path: Path, weights: Path | None = None) -> ModelFiles:
    """Detect the format and find the files that go with it, refusing anything unsafe or missing."""
    main = Path(path).absolute()
    fmt, found = _detect(main)
    if weights is not None and fmt is not ModelFormat.TORCH_ARCHITECTURE:
        raise ModelFormatError(
            f"--weights is only for an architecture .py file; {main.name} holds its own weights"
        )
    if fmt is ModelFormat.ONNX:
        return ModelFiles(main, fmt, extra=onnx_format.external_files(main, found.onnx_model))
    if fmt is ModelFormat.TORCH_ARCHITECTURE:
        extra, weights = architecture.companions(main, weights)  # a changed model the studio saved
        return ModelFiles(main, fmt, extra=extra, weights=weights)
    return ModelFiles(main, fmt)
