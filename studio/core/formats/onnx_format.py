"""ONNX models: recognised by their first protobuf field, opened as the ``onnx.ModelProto``.

An ONNX file never runs code when it is read, but it may name side files for its weights
(external data); those names come from the file, so each one is checked to stay beside it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING

from studio.api import ModelFormatError, TensorSpec, first_line
from studio.core.formats.content import Container, container
from studio.core.model_files import ModelFiles, ModelFormat

if TYPE_CHECKING:
    import onnx

FORMAT = ModelFormat.ONNX


def match(path: Path, head: bytes) -> bool:
    """A protobuf message opening with field 1 as a number, as every ONNX writer starts a model.

    That is all a signature can say; :func:`read_proto` then parses the file and refuses a
    damaged one.
    """
    return container(path, head) is Container.PROTOBUF


def runs_code(files: ModelFiles) -> bool:
    return False


def open(files: ModelFiles, *, trusted: bool = False) -> onnx.ModelProto:
    """The model with its weights; ``trusted`` changes nothing, as reading ONNX runs no code."""
    return load_onnx(files)


def read_proto(path: Path) -> onnx.ModelProto:
    """The model's structure without its external data, or a refusal naming what is damaged."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        raise ModelFormatError(
            f"{path.name} is a damaged or truncated ONNX file (it does not parse as ONNX protobuf)"
        ) from None
    problem = _structure_problem(model)
    if problem:
        raise ModelFormatError(f"{path.name} is a damaged or truncated ONNX file: {problem}")
    return model


def _structure_problem(model: onnx.ModelProto) -> str | None:
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


# ---------------------------------------------------------------------------------------------
# External data


def external_files(main: Path, model: onnx.ModelProto) -> tuple[Path, ...]:
    """The side files the model's tensors live in, relative to its folder; each checked to be there."""
    return tuple(_check_external_location(main, loc) for loc in _external_locations(model))


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


# ---------------------------------------------------------------------------------------------
# Reading a collected model


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
    """numpy's name for an ONNX element type, or ONNX's own where numpy has none (bfloat16, float8)."""
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
