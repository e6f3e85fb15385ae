"""Load, save and inspect model files without trusting them.

Formats are recognised by their content, never by the extension alone (a `.onnx` that is
really a zip is refused with a clear message). Nothing here runs code from a file unless the
caller passes ``trusted=True``, which the project grants only after the user said so.

torch and onnx are imported inside the functions that need them: the window imports this
module at start-up and must not pay for them there.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import logging
import pickle
import re
import struct
import warnings
import weakref
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any

from studio.api import ModelFormatError, TensorSpec, UntrustedFileError, first_line
from studio.core.architecture import import_architecture
from studio.core.files import atomic_path, sha256_file
from studio.core.model_files import ModelFiles, ModelFormat
from studio.core.torch_structure import apply_structure_file, files_beside, find_structure, restore_aliases

if TYPE_CHECKING:
    import onnx
    import torch


# =============================================================================================
# Recognising a file by its content

_ZIP_MAGIC = b"PK\x03\x04"
_ONNX_FIRST_BYTE = 0x08  # ModelProto field 1 (ir_version), which every writer puts first
_MAX_PYTHON_BYTES = 20 << 20
_FORMATS_READ = "ONNX, TorchScript, torch.export .pt2, a pickled PyTorch module or an architecture .py"


class _Kind(str, Enum):
    """What a file turned out to hold; wider than ModelFormat because weights and junk count."""

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


_KIND_FORMAT = {
    _Kind.ONNX: ModelFormat.ONNX,
    _Kind.TORCHSCRIPT: ModelFormat.TORCHSCRIPT,
    _Kind.EXPORTED_PROGRAM: ModelFormat.EXPORTED_PROGRAM,
    _Kind.TORCH_PICKLE: ModelFormat.TORCH_PICKLE,
    _Kind.PYTHON: ModelFormat.TORCH_ARCHITECTURE,
}

_KIND_WORDS = {
    _Kind.ONNX: "it is an ONNX model",
    _Kind.TORCHSCRIPT: "it is a zip archive (a PyTorch file?)",
    _Kind.EXPORTED_PROGRAM: "it is a zip archive (a PyTorch file?)",
    _Kind.TORCH_PICKLE: "it holds pickled Python objects, not only tensors",
    _Kind.STATE_DICT: "it is a PyTorch weights file",
    _Kind.OTHER_ZIP: "it is a zip archive",
    _Kind.SAFETENSORS: "it is a safetensors weights file",
    _Kind.PYTHON: "it is Python source code",
    _Kind.TEXT: "it is a text file",
    _Kind.UNKNOWN: "its content is not a model format the studio reads",
}

# Extensions that make a promise about the content; others (.pt, .pth, .bin) promise nothing.
_EXTENSION_CLAIMS = {
    ".onnx": (_Kind.ONNX, "an ONNX model"),
    ".py": (_Kind.PYTHON, "a Python architecture file"),
    ".safetensors": (_Kind.SAFETENSORS, "a safetensors file"),
}


@dataclass
class _Found:
    kind: _Kind
    onnx_model: onnx.ModelProto | None = None  # parsed without external data, when ONNX


def detect_format(path: Path) -> ModelFormat:
    """Say what a model file is by reading it; refuse anything that cannot stand as a model alone."""
    return _detect(Path(path))[0]


def _detect(path: Path) -> tuple[ModelFormat, _Found]:
    found = _identify(path)
    _check_extension(path, found.kind)
    if found.kind in (_Kind.STATE_DICT, _Kind.SAFETENSORS):
        raise ModelFormatError(
            f"{path.name} holds only weights; import it with its architecture file: "
            f"studio import ARCH.py --weights {path.name}"
        )
    if found.kind not in _KIND_FORMAT:
        raise ModelFormatError(
            f"{path.name} is not a model the studio reads ({_FORMATS_READ}): {_KIND_WORDS[found.kind]}"
        )
    return _KIND_FORMAT[found.kind], found


def _identify(path: Path) -> _Found:
    _check_is_file(path)
    with open(path, "rb") as f:
        head = f.read(64)
    if head.startswith(_ZIP_MAGIC):
        return _Found(_identify_zip(path))
    if _looks_like_safetensors(path, head):
        return _Found(_Kind.SAFETENSORS)
    if _looks_like_torch_pickle(head):
        return _Found(_classify_torch_save(path, mmap=False))
    if head[0] == _ONNX_FIRST_BYTE:
        return _Found(_Kind.ONNX, _parse_onnx(path))
    if b"\x00" not in head:
        return _Found(_identify_text(path))
    return _Found(_Kind.UNKNOWN)


def _check_is_file(path: Path) -> None:
    if not path.exists():
        raise ModelFormatError(f"{path} does not exist")
    if path.is_dir():
        raise ModelFormatError(f"{path} is a folder; name the model file inside it")
    if not path.is_file():
        raise ModelFormatError(f"{path} is not a regular file")
    if path.stat().st_size == 0:
        raise ModelFormatError(f"{path.name} is empty")


def _check_extension(path: Path, kind: _Kind) -> None:
    claim = _EXTENSION_CLAIMS.get(path.suffix.lower())
    if claim is None or claim[0] == kind:
        return
    if claim[0] is _Kind.ONNX and kind is _Kind.UNKNOWN:
        raise ModelFormatError(
            f"{path.name} is not an ONNX model: its content is not ONNX (nor any model format)"
        )
    raise ModelFormatError(f"{path.name} is not {claim[1]}: {_KIND_WORDS[kind]}")


def _identify_zip(path: Path) -> _Kind:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelFormatError(f"{path.name} is a damaged zip archive (truncated?): {exc}") from None
    tails = {name.split("/", 1)[-1] for name in names}
    if "archive_format" in tails or any(t.startswith("models/") and t.endswith(".json") for t in tails):
        return _Kind.EXPORTED_PROGRAM
    if any(t.startswith("code/") for t in tails):
        return _Kind.TORCHSCRIPT
    if "data.pkl" in tails:
        return _classify_torch_save(path, mmap=True)
    return _Kind.OTHER_ZIP


def _looks_like_safetensors(path: Path, head: bytes) -> bool:
    if len(head) < 9:
        return False
    (header_len,) = struct.unpack("<Q", head[:8])
    return 0 < header_len <= path.stat().st_size - 8 and head[8:9] == b"{"


def _looks_like_torch_pickle(head: bytes) -> bool:
    """torch.save's pre-zip format: a pickle (protocol 2+) that opens with torch's magic number."""
    return len(head) > 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _classify_torch_save(path: Path, *, mmap: bool) -> _Kind:
    """Weights or a whole module? Ask the safe loader: it refuses exactly what would run code."""
    try:
        obj = _torch_load_weights(path, mmap=mmap)
    except pickle.UnpicklingError as exc:
        if "global" in str(exc).lower() or "weights only" in str(exc).lower():
            return _Kind.TORCH_PICKLE
        raise ModelFormatError(f"{path.name} is a damaged PyTorch file: {first_line(exc)}") from None
    except Exception as exc:
        raise ModelFormatError(f"{path.name} is a damaged PyTorch file: {first_line(exc)}") from None
    if _find_state_dict(obj) is None:
        raise ModelFormatError(f"{path.name} holds PyTorch data but no model and no weights")
    return _Kind.STATE_DICT


def _torch_load_weights(path: Path, *, mmap: bool = False) -> Any:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(path, weights_only=True, map_location="cpu", mmap=mmap)


def _identify_text(path: Path) -> _Kind:
    if path.stat().st_size > _MAX_PYTHON_BYTES:
        return _Kind.UNKNOWN
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return _Kind.UNKNOWN
    try:
        tree = ast.parse(source, filename=path.name)
    except (SyntaxError, ValueError) as exc:
        if path.suffix.lower() == ".py":
            where = f" (line {exc.lineno})" if getattr(exc, "lineno", None) else ""
            reason = getattr(exc, "msg", None) or first_line(exc)
            raise ModelFormatError(f"{path.name} is not valid Python{where}: {reason}") from None
        return _Kind.TEXT
    if path.suffix.lower() == ".py" or "build_model" in _top_level_names(tree):
        return _Kind.PYTHON
    return _Kind.TEXT


def _top_level_names(tree: ast.Module) -> set[str]:
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


# =============================================================================================
# ONNX files


def _parse_onnx(path: Path) -> onnx.ModelProto:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        raise ModelFormatError(
            f"{path.name} is a damaged or truncated ONNX file (it does not parse as ONNX protobuf)"
        ) from None
    problem = _onnx_structure_problem(model)
    if problem:
        raise ModelFormatError(f"{path.name} is a damaged or truncated ONNX file: {problem}")
    return model


def _onnx_structure_problem(model: onnx.ModelProto) -> str | None:
    """Catch files cut at a field boundary, which protobuf parses without complaint."""
    if model.ir_version <= 0:
        return "it has no IR version"
    if not model.HasField("graph") or not model.graph.node:
        return "it has no graph"
    if not model.opset_import:
        return "it names no operator set"
    known = {i.name for i in model.graph.input} | {i.name for i in model.graph.initializer}
    known |= {o for n in model.graph.node for o in n.output}
    missing = [o.name for o in model.graph.output if o.name not in known]
    return f"its output {missing[0]!r} is produced by no node" if missing else None


def onnx_graph_problem(model: onnx.ModelProto) -> str | None:
    """What makes a parsed graph unrunnable, found before it is recorded rather than at its first use:
    a cycle or nodes out of order, a value nothing produces, or declared shapes and types that
    contradict what the operators make of them."""
    import onnx

    graph = model.graph
    made = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    made |= {t.values.name for t in graph.sparse_initializer}
    later = {o for node in graph.node for o in node.output}
    for index, node in enumerate(graph.node):
        for name in node.input:
            if name in made:
                continue
            node_name = node.name or f"{node.op_type} #{index}"
            if name in later:
                return f"its nodes form a cycle or are out of order ({node_name} reads {name!r} before it is made)"
            return f"{node_name} reads {name!r}, which nothing produces"
        made.update(node.output)
    try:
        onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as exc:  # only contradictions refuse: other gaps in inference are common and harmless
        text = str(exc)
        if "differ" in text:
            return "its declared shapes contradict its operators (" + text.split("] ")[-1].strip() + ")"
    return None


def _iter_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every tensor stored in a graph, its subgraphs and node attributes."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _iter_tensors(attr.g)
            for sub in attr.graphs:
                yield from _iter_tensors(sub)


def _external_locations(model: onnx.ModelProto) -> list[str]:
    import onnx

    locations: list[str] = []
    for tensor in _iter_tensors(model.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        entry = {e.key: e.value for e in tensor.external_data}
        locations.append(entry.get("location", ""))
    for fn in model.functions:
        for node in fn.node:
            for attr in node.attribute:
                if attr.HasField("t") and attr.t.data_location == onnx.TensorProto.EXTERNAL:
                    locations.append({e.key: e.value for e in attr.t.external_data}.get("location", ""))
    return sorted(set(locations))


def _check_external_location(main: Path, location: str) -> Path:
    """The location as a safe relative path inside the model's folder, or a clear refusal."""
    name = main.name
    if not location:
        raise ModelFormatError(f"{name} has a tensor stored outside the file but does not say where")
    if location.startswith(("/", "\\")) or PureWindowsPath(location).drive or Path(location).is_absolute():
        raise ModelFormatError(
            f"{name} points to external data at an absolute path ({location}); it must sit beside the model"
        )
    parts = PurePosixPath(location.replace("\\", "/")).parts
    if ".." in parts:
        raise ModelFormatError(f"{name} points to external data outside its folder ({location})")
    relative = Path(*parts)
    target = main.parent / relative
    if not target.resolve().is_relative_to(main.parent.resolve()):
        raise ModelFormatError(f"{name} points to external data outside its folder ({location}, a link)")
    if not target.is_file():
        raise ModelFormatError(
            f"{name} needs its external data file '{location}', which is missing beside it"
        )
    return relative


def load_onnx(files: ModelFiles, *, load_external_data: bool = True) -> onnx.ModelProto:
    """The ONNX model with its weights; ``load_external_data=False`` for structure-only work."""
    import onnx

    if files.format is not ModelFormat.ONNX:
        raise ModelFormatError(f"{files.main.name} is a PyTorch model, not an ONNX one")
    try:
        return onnx.load(str(files.main), load_external_data=load_external_data)
    except Exception as exc:
        raise ModelFormatError(f"{files.main.name} could not be read: {first_line(exc)}") from None


def onnx_dtype_name(elem_type: int) -> str:
    import onnx

    try:
        return onnx.helper.tensor_dtype_to_np_dtype(elem_type).name
    except (KeyError, TypeError, ValueError):
        return onnx.TensorProto.DataType.Name(elem_type).lower()


def _value_spec(value: onnx.ValueInfoProto) -> TensorSpec:
    ttype = value.type.tensor_type
    if not value.type.HasField("tensor_type"):
        return TensorSpec(value.name, (), value.type.WhichOneof("value") or "unknown")
    dims: list[int | str | None] = []
    for d in ttype.shape.dim:
        if d.HasField("dim_value"):
            dims.append(d.dim_value)
        else:
            dims.append(d.dim_param or None)
    return TensorSpec(value.name, tuple(dims), onnx_dtype_name(ttype.elem_type))


def onnx_io_specs(model: onnx.ModelProto) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """What the caller feeds and gets back; initializers listed as inputs are weights, not inputs."""
    weights = {i.name for i in model.graph.initializer}
    inputs = [_value_spec(v) for v in model.graph.input if v.name not in weights]
    return inputs, [_value_spec(v) for v in model.graph.output]


# =============================================================================================
# Gathering every file a model needs


def collect_files(path: Path, weights: Path | None = None) -> ModelFiles:
    """Detect the format and find the files that go with it, refusing anything unsafe or missing."""
    main = Path(path).absolute()
    fmt, found = _detect(main)
    if weights is not None and fmt is not ModelFormat.TORCH_ARCHITECTURE:
        raise ModelFormatError(
            f"--weights is only for an architecture .py file; {main.name} holds its own weights"
        )
    if fmt is ModelFormat.ONNX:
        extra = tuple(_check_external_location(main, loc) for loc in _external_locations(found.onnx_model))
        return ModelFiles(main, fmt, extra=extra)
    if fmt is ModelFormat.TORCH_ARCHITECTURE:
        _check_defines_build_model(main)
        extra, weights = files_beside(main, weights)  # a changed model the studio saved
        return ModelFiles(main, fmt, extra=extra, weights=_check_weights(main, weights))
    return ModelFiles(main, fmt)


def _check_defines_build_model(main: Path) -> None:
    tree = ast.parse(main.read_text(encoding="utf-8"), filename=main.name)
    if "build_model" not in _top_level_names(tree):
        raise ModelFormatError(
            f"{main.name} has no build_model() function: define one that returns the model"
        )


def _check_weights(main: Path, weights: Path | None) -> Path:
    if weights is None:
        raise ModelFormatError(
            f"{main.name} is an architecture file: pass its weights too (--weights WEIGHTS.pt or .safetensors)"
        )
    weights = Path(weights).absolute()
    if not weights.exists():
        raise ModelFormatError(f"the weights file {weights} does not exist")
    if not weights.is_file():
        raise ModelFormatError(f"the weights path {weights} is not a file")
    kind = _identify(weights).kind
    if kind not in (_Kind.STATE_DICT, _Kind.SAFETENSORS):
        raise ModelFormatError(
            f"{weights.name} is not a weights file (a state_dict .pt or .safetensors): {_KIND_WORDS[kind]}"
        )
    try:
        return weights.relative_to(main.parent)
    except ValueError:
        return weights


# =============================================================================================
# PyTorch modules

# What each loaded module came from, so its input shapes can be read later without reloading.
_ORIGINS: weakref.WeakKeyDictionary[Any, _Origin] = weakref.WeakKeyDictionary()


@dataclass
class _Origin:
    namespace: Any = None  # the imported architecture file
    example: tuple | None = None  # an ExportedProgram's example inputs
    dynamic_batch: bool = True


def load_torch_module(files: ModelFiles, *, trusted: bool) -> torch.nn.Module:
    """The model as an eval-mode torch module; code from the file runs only when ``trusted``."""
    loaders = {
        ModelFormat.TORCHSCRIPT: _load_torchscript,
        ModelFormat.EXPORTED_PROGRAM: _load_exported_program,
        ModelFormat.TORCH_ARCHITECTURE: _load_architecture,
        ModelFormat.TORCH_PICKLE: _load_pickle,
    }
    if files.format not in loaders:
        raise ModelFormatError(f"{files.main.name} is an ONNX model, not a PyTorch one")
    module = loaders[files.format](files, trusted)
    if files.format is not ModelFormat.EXPORTED_PROGRAM:  # a program is exported for inference already
        module.eval()
    return module


def untrusted_error(path: Path, fmt: ModelFormat) -> UntrustedFileError:
    """The refusal for a file that would run code, naming the hash the user is asked to trust."""
    digest = sha256_file(path)[:12]
    what = {
        ModelFormat.TORCH_ARCHITECTURE: "is Python code: loading the model runs it",
        ModelFormat.EXPORTED_PROGRAM: "holds native code or pickled Python objects: loading it runs code "
        "from the file",
        ModelFormat.TORCHSCRIPT: "is a TorchScript archive: loading it runs the archive's own code",
    }.get(fmt, "is a pickled PyTorch module: loading it runs code from the file")
    return UntrustedFileError(
        f"{path.name} {what}. Pass --trust if you trust it (sha256 {digest}…).",
        path=path,
        reason=f"{path.name} {what} (sha256 {digest}…)",
    )


def _load_torchscript(files: ModelFiles, trusted: bool) -> torch.nn.Module:
    if not trusted:  # before torch is imported: a refusal takes a moment, not seconds
        raise untrusted_error(files.main, files.format)
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.jit.load(str(files.main), map_location="cpu")
    except Exception as exc:
        raise ModelFormatError(
            f"{files.main.name} is a damaged TorchScript file: {first_line(exc)}"
        ) from None


def _load_exported_program(files: ModelFiles, trusted: bool) -> torch.nn.Module:
    if not trusted and _program_runs_code(files.main):
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
    _ORIGINS[module] = _Origin(
        example=_program_example(program), dynamic_batch=_program_batch_is_free(program)
    )
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


def _load_pickle(files: ModelFiles, trusted: bool) -> torch.nn.Module:
    if not trusted:
        raise untrusted_error(files.main, files.format)
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(files.main, weights_only=False, map_location="cpu")
    except (ModuleNotFoundError, AttributeError) as exc:
        raise ModelFormatError(
            f"{files.main.name} needs Python code that is not installed here ({first_line(exc)}); "
            "save the model as TorchScript, .pt2 or an architecture .py file instead"
        ) from None
    except Exception as exc:
        raise ModelFormatError(f"{files.main.name} is a damaged PyTorch file: {first_line(exc)}") from None
    if not isinstance(obj, torch.nn.Module):
        raise ModelFormatError(f"{files.main.name} holds a {type(obj).__name__}, not a PyTorch module")
    return obj


def _load_architecture(files: ModelFiles, trusted: bool) -> torch.nn.Module:
    if not trusted:
        raise untrusted_error(files.main, files.format)
    import torch

    namespace = import_architecture(files.main)
    build = getattr(namespace, "build_model", None)
    if not callable(build):
        raise ModelFormatError(
            f"{files.main.name} has no build_model() function: define one that returns the model"
        )
    try:
        module = build()
    except Exception as exc:
        raise ModelFormatError(f"build_model() in {files.main.name} failed: {first_line(exc)}") from None
    if not isinstance(module, torch.nn.Module):
        raise ModelFormatError(
            f"build_model() in {files.main.name} returned a {type(module).__name__}, not a torch.nn.Module"
        )
    if files.weights is None:
        raise ModelFormatError(f"{files.main.name} is an architecture file and needs its weights (--weights)")
    structure = find_structure(files)
    if structure is None:
        _load_weights_into(module, files.weights_path, files.main.name)
    else:  # layer shapes differ from build_model(): reshape, then load
        aliases = apply_structure_file(module, structure)
        shaped = f"{files.main.name} as {structure.name} shapes it"
        _load_weights_into(module, files.weights_path, shaped, aliases)
    _ORIGINS[module] = _Origin(namespace=namespace)
    return module


def _read_state_dict(weights: Path) -> dict[str, Any]:
    if _identify(weights).kind is _Kind.SAFETENSORS:
        from safetensors.torch import load_file

        return load_file(str(weights), device="cpu")
    state = _find_state_dict(_torch_load_weights(weights))
    if state is None:
        raise ModelFormatError(f"{weights.name} holds no state_dict")
    return state


def _find_state_dict(obj: Any) -> dict[str, Any] | None:
    """The tensors of a state_dict, also inside the usual checkpoint wrappers ({"state_dict": ...})."""
    import torch

    if not isinstance(obj, Mapping):
        return None
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return _strip_prefix(dict(obj), "module.")
    for key in ("state_dict", "model_state_dict", "model", "weights"):
        inner = obj.get(key)
        if isinstance(inner, Mapping):
            found = _find_state_dict(inner)
            if found is not None:
                return found
    return None


def _strip_prefix(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    """DataParallel saves every key with 'module.'; the bare model has none."""
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix) :]: v for k, v in state.items()}
    return state


def read_weights(weights: Path) -> dict:
    """A state_dict from `.pt` (weights only) or `.safetensors`; an unreadable file is one sentence."""
    try:
        return _read_state_dict(weights)
    except ModelFormatError:
        raise
    except Exception as exc:
        raise ModelFormatError(f"{weights.name} could not be read: {first_line(exc)}") from None


def _load_weights_into(
    module: torch.nn.Module, weights: Path, arch_name: str, aliases: Mapping[str, str] | None = None
) -> None:
    """Load strictly; ``aliases`` (tied names a structure file recorded) are restored first."""
    state = read_weights(weights)
    if aliases:
        restore_aliases(state, aliases, weights.name)
    problem = _state_dict_mismatch(module, state)
    if problem:
        raise ModelFormatError(f"{weights.name} does not fit {arch_name}: {problem}")
    module.load_state_dict(state, strict=True)


def _state_dict_mismatch(module: torch.nn.Module, state: Mapping[str, Any]) -> str | None:
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} is {tuple(state[k].shape)} but the model wants {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing ({_few(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({_few(unexpected)})")
    if wrong:
        parts.append(_few(wrong))
    return "; ".join(parts) or None


def _few(items: Sequence[str], n: int = 3) -> str:
    shown = ", ".join(items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


def code_bearing_files(files: ModelFiles) -> list[Path]:
    """The files of a model that run code when loaded, and so need the user's trust.

    TorchScript always does: loading an archive runs its scripted classes' ``__setstate__``.
    """
    if files.format in (ModelFormat.TORCH_ARCHITECTURE, ModelFormat.TORCH_PICKLE, ModelFormat.TORCHSCRIPT):
        return [files.main]
    if files.format is ModelFormat.EXPORTED_PROGRAM and _program_runs_code(files.main):
        return [files.main]
    return []


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


def _program_runs_code(path: Path) -> bool:
    """Whether torch.export.load would run anything but the safe loader on this archive.

    A plain `.pt2` is JSON and raw tensor bytes, but an archive may also carry native code
    (AOTInductor's shared libraries, which load runs), pickled tensors, script objects and
    arbitrary pickled constants, which it reads with the full unpickler (and falls back to it for
    sample inputs). A member outside the plain layout makes the file code-bearing; each pickled
    payload inside it is checked.
    """
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


# =============================================================================================
# Inputs of PyTorch models


def default_input_names(count: int) -> list[str]:
    return ["input"] if count == 1 else [f"input_{i}" for i in range(count)]


def default_output_names(count: int) -> list[str]:
    return ["output"] if count == 1 else [f"output_{i}" for i in range(count)]


def torch_input_specs(
    files: ModelFiles, module: torch.nn.Module, input_shapes: Sequence[tuple[int, ...]] | None = None
) -> list[TensorSpec]:
    """What the module takes. Dim 0 is the batch: named "batch" wherever the model accepts any."""
    origin = _ORIGINS.get(module) or _Origin()
    declared = _declared_inputs(files, origin)
    if input_shapes:
        dtypes = [d for _, d in declared] if declared and len(declared) == len(input_shapes) else None
        declared = [(tuple(s), dtypes[i] if dtypes else "float32") for i, s in enumerate(input_shapes)]
    if not declared:
        raise ModelFormatError(
            f"{files.main.name} does not say what input it takes; pass --input-shape 1,3,224,224"
        )
    names = default_input_names(len(declared))
    return [
        TensorSpec(name, _batch_named(shape, origin.dynamic_batch), dtype)
        for name, (shape, dtype) in zip(names, declared, strict=True)
    ]


def _batch_named(shape: tuple[int, ...], dynamic: bool) -> tuple[int | str, ...]:
    return ("batch", *shape[1:]) if dynamic and shape else tuple(shape)


def _declared_inputs(files: ModelFiles, origin: _Origin) -> list[tuple[tuple[int, ...], str]] | None:
    if origin.example is not None:
        return _describe_tensors(origin.example)
    if files.format is not ModelFormat.TORCH_ARCHITECTURE:
        return None
    if origin.namespace is not None:
        return _declared_by_namespace(files.main, origin.namespace)
    return _declared_by_source(files.main)


def _declared_by_namespace(path: Path, namespace: Any) -> list[tuple[tuple[int, ...], str]] | None:
    make = getattr(namespace, "example_inputs", None)
    if callable(make):
        try:
            example = make()
        except Exception as exc:
            raise ModelFormatError(f"example_inputs() in {path.name} failed: {first_line(exc)}") from None
        return _describe_tensors(example if isinstance(example, (tuple, list)) else (example,))
    return _shapes_constant(
        path, getattr(namespace, "INPUT_SHAPES", None), getattr(namespace, "INPUT_SHAPE", None)
    )


def _declared_by_source(path: Path) -> list[tuple[tuple[int, ...], str]] | None:
    """INPUT_SHAPE(S) read from the file's text, for a module whose namespace is not at hand."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=path.name)
    constants: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            with contextlib.suppress(ValueError, SyntaxError):
                constants[node.targets[0].id] = ast.literal_eval(node.value)
    return _shapes_constant(path, constants.get("INPUT_SHAPES"), constants.get("INPUT_SHAPE"))


def _shapes_constant(path: Path, shapes: Any, shape: Any) -> list[tuple[tuple[int, ...], str]] | None:
    if shapes is None and shape is None:
        return None
    try:
        listed = (
            [tuple(int(d) for d in s) for s in shapes]
            if shapes is not None
            else [tuple(int(d) for d in shape)]
        )
    except (TypeError, ValueError):
        raise ModelFormatError(
            f"INPUT_SHAPE(S) in {path.name} is not a shape like (1, 3, 224, 224)"
        ) from None
    return [(s, "float32") for s in listed]


def _describe_tensors(tensors: Sequence[Any]) -> list[tuple[tuple[int, ...], str]]:
    import torch

    described = []
    for t in tensors:
        if not isinstance(t, torch.Tensor):
            raise ModelFormatError(f"the model's example input is a {type(t).__name__}, not a tensor")
        described.append((tuple(int(d) for d in t.shape), str(t.dtype).removeprefix("torch.")))
    return described


def torch_example_inputs(specs: Sequence[TensorSpec], batch: int = 1) -> tuple[torch.Tensor, ...]:
    """Tensors that fit ``specs``: random floats, zeros for integers (valid indices for embeddings)."""
    import torch

    generator = torch.Generator().manual_seed(0)
    tensors = []
    for spec in specs:
        shape = [
            batch if i == 0 and not isinstance(d, int) else (d if isinstance(d, int) else 1)
            for i, d in enumerate(spec.shape)
        ]
        dtype = getattr(torch, spec.dtype)
        if dtype.is_floating_point:
            tensors.append(torch.randn(shape, generator=generator).to(dtype))
        else:
            tensors.append(torch.zeros(shape, dtype=dtype))
    return tuple(tensors)


# =============================================================================================
# Export to ONNX


def export_onnx(
    module: torch.nn.Module,
    example_inputs: tuple,
    out_path: Path,
    *,
    input_names: Sequence[str],
    output_names: Sequence[str] | None = None,
    dynamic_batch: bool = True,
    opset: int | None = None,
) -> Path:
    """Write one self-contained ONNX file: the TorchScript exporter first (fast), else torch.export."""
    out_path = Path(out_path)
    outputs = flatten_outputs(_run_once(module, example_inputs))
    names_out = list(output_names) if output_names else default_output_names(len(outputs))
    axes = _dynamic_axes(input_names, example_inputs, names_out, outputs) if dynamic_batch else None
    kwargs = dict(input_names=list(input_names), output_names=names_out, dynamic_axes=axes)
    with atomic_path(out_path) as tmp, _quiet_export():
        try:
            _export_torchscript(module, example_inputs, tmp, opset=opset, **kwargs)
        except Exception:
            try:
                _export_dynamo(module, example_inputs, tmp, opset=opset, **kwargs)
            except Exception as exc:
                raise ModelFormatError(
                    f"the model could not be converted to ONNX: {first_line(exc)}"
                ) from None
    return out_path


def export_torch_files(
    files: ModelFiles,
    out_path: Path,
    *,
    trusted: bool,
    input_shapes: Sequence[tuple[int, ...]] | None = None,
) -> tuple[Path, torch.nn.Module, list[TensorSpec]]:
    """A stored PyTorch model as one ONNX file, its batch dimension left free where the model
    takes any batch: what the layer table, the graph view and ONNX Runtime read of a PyTorch
    version. Returns the file, the loaded module and its input specs."""
    module = load_torch_module(files, trusted=trusted)
    specs = torch_input_specs(files, module, input_shapes)
    path = export_onnx(
        module,
        torch_example_inputs(specs),
        out_path,
        input_names=[s.name for s in specs],
        dynamic_batch=bool(specs) and all(s.shape[:1] == ("batch",) for s in specs),
    )
    return path, module, specs


def _run_once(module: torch.nn.Module, example_inputs: tuple) -> Any:
    import torch

    try:
        with torch.no_grad():
            return module(*example_inputs)
    except Exception as exc:
        raise ModelFormatError(
            f"the model fails on an input of the declared shape: {first_line(exc)}"
        ) from None


def flatten_outputs(result: Any) -> list[Any]:
    if isinstance(result, (tuple, list)):
        return [t for item in result for t in flatten_outputs(item)]
    if isinstance(result, Mapping):
        return [t for item in result.values() for t in flatten_outputs(item)]
    return [result]


def _dynamic_axes(names_in, inputs, names_out, outputs) -> dict[str, dict[int, str]]:
    pairs = [*zip(names_in, inputs, strict=False), *zip(names_out, outputs, strict=False)]
    return {name: {0: "batch"} for name, t in pairs if getattr(t, "ndim", 0) >= 1}


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """The exporters print progress and warnings; the command line's --json output must stay clean."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _export_torchscript(module, example_inputs, path: Path, *, opset, **kwargs) -> None:
    import torch

    extra = {"opset_version": opset} if opset else {}
    torch.onnx.export(
        module, example_inputs, str(path), dynamo=False, do_constant_folding=True, **extra, **kwargs
    )


def _export_dynamo(module, example_inputs, path: Path, *, opset, **kwargs) -> None:
    import torch

    extra = {"opset_version": opset} if opset else {}
    if kwargs.get("dynamic_axes") is None:
        kwargs.pop("dynamic_axes")
    torch.onnx.export(
        module, example_inputs, str(path), dynamo=True, external_data=False, verbose=False, **extra, **kwargs
    )


# =============================================================================================
# Counting parameters

# Inputs that hold shapes, indices or quantization scales rather than learned values.
_NOT_LEARNED_INPUTS: dict[str, frozenset[int]] = {
    "QuantizeLinear": frozenset({1, 2}),
    "DequantizeLinear": frozenset({1, 2}),
    "DynamicQuantizeLinear": frozenset(),
    "QLinearConv": frozenset({1, 2, 4, 5, 6, 7}),
    "QLinearMatMul": frozenset({1, 2, 4, 5, 6, 7}),
    "QGemm": frozenset({1, 2, 4, 5, 7, 8}),
    "MatMulInteger": frozenset({2, 3}),
    "MatMulIntegerToFloat": frozenset({2, 3, 4, 5}),
    "DynamicQuantizeMatMul": frozenset({2, 3}),
    "ConvInteger": frozenset({2, 3}),
    "Reshape": frozenset({1}),
    "Expand": frozenset({1}),
    "Tile": frozenset({1}),
    "Slice": frozenset({1, 2, 3, 4}),
    "Squeeze": frozenset({1}),
    "Unsqueeze": frozenset({1}),
    "Split": frozenset({1}),
    "Pad": frozenset({1, 2, 3}),
    "Resize": frozenset({1, 2, 3}),
    "Upsample": frozenset({1}),
    "Clip": frozenset({1, 2}),
    "ConstantOfShape": frozenset({0}),
    "Range": frozenset({0, 1, 2}),
    "Gather": frozenset({1}),
    "TopK": frozenset({1}),
    "OneHot": frozenset({1, 2}),
    "CumSum": frozenset({1}),
    **{
        op: frozenset({1})
        for op in (
            "ReduceSum",
            "ReduceMean",
            "ReduceMax",
            "ReduceMin",
            "ReduceProd",
            "ReduceL1",
            "ReduceL2",
            "ReduceSumSquare",
            "ReduceLogSumExp",
        )
    },
}


def learned_inputs(node: onnx.NodeProto) -> Iterator[str]:
    """Names a node reads as learned values, including what nodes in its subgraphs read."""
    skip = _NOT_LEARNED_INPUTS.get(node.op_type, frozenset())
    yield from (name for i, name in enumerate(node.input) if name and i not in skip)
    for attr in node.attribute:
        for graph in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
            for inner in graph.node:
                yield from learned_inputs(inner)


def initializer_sizes(graph: onnx.GraphProto) -> dict[str, int]:
    """Element count of every initializer of a graph and its subgraphs (data need not be loaded)."""
    sizes = {t.name: _elements(t.dims) for t in graph.initializer}
    sizes.update({s.values.name: _elements(s.dims) for s in graph.sparse_initializer})
    for node in graph.node:
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                sizes.update(initializer_sizes(sub))
    return sizes


def _elements(dims: Sequence[int]) -> int:
    count = 1
    for d in dims:
        count *= int(d)
    return count


def onnx_parameter_count(model: onnx.ModelProto) -> int:
    """Learned values: initializers that some node reads as weights, each counted once."""
    sizes = initializer_sizes(model.graph)
    used = {name for node in model.graph.node for name in learned_inputs(node)}
    return sum(n for name, n in sizes.items() if name in used)


def torch_parameter_count(module: torch.nn.Module) -> int:
    """Parameters of the module; tied weights are one tensor and count once."""
    return sum(p.numel() for p in module.parameters())


def count_parameters(model: Any) -> int:
    """Parameters of an ONNX ModelProto or a torch module."""
    if type(model).__name__ == "ModelProto":
        return onnx_parameter_count(model)
    return torch_parameter_count(model)


__all__ = [
    "ModelFiles",
    "ModelFormat",
    "TensorSpec",
    "code_bearing_files",
    "onnx_graph_problem",
    "collect_files",
    "count_parameters",
    "default_input_names",
    "default_output_names",
    "detect_format",
    "export_onnx",
    "flatten_outputs",
    "initializer_sizes",
    "learned_inputs",
    "load_onnx",
    "load_torch_module",
    "onnx_dtype_name",
    "onnx_io_specs",
    "onnx_parameter_count",
    "torch_example_inputs",
    "torch_input_specs",
    "torch_parameter_count",
    "untrusted_error",
]
