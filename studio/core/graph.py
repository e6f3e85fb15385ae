"""The layer table: what each node of a model does, its output shape, parameters and MACs.

Shapes come from shape inference (:mod:`studio.core.shape_inference`), so a model that does
not fit this machine's memory or has no runtime here can still be inspected; only when
inference leaves a size that a MAC count needs unknown is the model run once, on a sample
input, to read it. PyTorch models are converted to a temporary ONNX file first and inspected
the same way. MACs are counted with the rules of :mod:`studio._macs`, which the techniques use
too; parameters with the one rule of :mod:`studio.core.parameters`, which
:func:`~studio.core.parameters.count_parameters` uses too, so the table's total and that count
agree. A count that cannot be known is None, never 0: a 0 would read as "free".
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from studio._macs import known_node_macs
from studio.core.models import (
    ModelFiles,
    ModelFormat,
    TensorSpec,
    count_parameters,
    export_torch_files,
    load_onnx,
    onnx_io_specs,
)
from studio.core.parameters import node_parameters
from studio.core.shape_inference import Shape, constant_values, infer_shapes, subgraphs

if TYPE_CHECKING:
    import numpy as np
    import onnx


@dataclass
class Layer:
    name: str
    op: str
    output_shape: Shape | None
    params: int
    macs: int | None  # None: a shape this node's count needs could not be found

    def to_dict(self) -> dict:
        d = asdict(self)
        d["output_shape"] = None if self.output_shape is None else list(self.output_shape)
        return d


@dataclass
class ModelInfo:
    format: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    params: int
    size_bytes: int
    op_histogram: dict[str, int]
    layers: list[Layer]
    macs: int | None  # None when some layer's MACs cannot be known: a partial sum would mislead
    opset: int | None
    producer: str | None
    # The concrete input shapes the layer shapes and MACs are for (batch 1, open sizes filled
    # from the recorded shapes or the sample a run accepted); None while some size stays open.
    counted_inputs: dict[str, list[int]] | None = None

    def to_dict(self) -> dict:
        return {
            "format": self.format,
            "inputs": [s.to_dict() for s in self.inputs],
            "outputs": [s.to_dict() for s in self.outputs],
            "params": self.params,
            "size_bytes": self.size_bytes,
            "op_histogram": dict(self.op_histogram),
            "layers": [layer.to_dict() for layer in self.layers],
            "macs": self.macs,
            "opset": self.opset,
            "producer": self.producer,
            "counted_inputs": None if self.counted_inputs is None else dict(self.counted_inputs),
        }


# =============================================================================================
# Layers of an ONNX graph


def onnx_layers(
    model: onnx.ModelProto,
    batch: int = 1,
    *,
    input_shapes: Sequence[Sequence[int]] | None = None,
    base_dir: Path | None = None,
) -> list[Layer]:
    """One row per top-level node; shapes and MACs are for a batch of ``batch``.

    ``input_shapes`` (one full shape per input) fills the sizes the file leaves open;
    ``base_dir`` is where external weights lie, should the model have to be run for shapes.
    """
    return _counted(model, batch, input_shapes, base_dir)[0]


def _counted(
    model: onnx.ModelProto,
    batch: int,
    input_shapes: Sequence[Sequence[int]] | None,
    base_dir: Path | None,
) -> tuple[list[Layer], dict[str, list[int]] | None]:
    """The layer rows, and the concrete input shapes they are for (when every size is known)."""
    graph = model.graph
    constants = constant_values(graph)
    inferred = infer_shapes(
        model,
        batch=batch,
        input_shapes=input_shapes,
        base_dir=base_dir,
        unknown=lambda shapes: _missing_shapes(graph, shapes),
    )
    shapes = inferred.shapes
    params = node_parameters(graph, constants)
    layers = []
    for index, node in enumerate(graph.node):
        output = shapes.get(node.output[0]) if node.output else None
        name = node.name or f"{node.op_type}_{index}"
        layers.append(Layer(name, node.op_type, output, params[index], _node_macs(node, shapes, constants)))
    at = None if inferred.inputs is None else {k: list(v) for k, v in inferred.inputs.items()}
    return layers, at


# =============================================================================================
# MACs, subgraphs included


def _node_macs(
    node: onnx.NodeProto, shapes: Mapping[str, Shape], constants: Mapping[str, np.ndarray]
) -> int | None:
    """A node's MACs, with what its subgraphs compute; None where that cannot be known.

    An If costs what its branches cost when they cost the same; a Loop its body times a trip
    count fixed in the file; a Scan its body times the scanned length.
    """
    if node.op_type == "If":
        counts = {_graph_macs(g, shapes, constants) for g in subgraphs(node)}
        return counts.pop() if len(counts) == 1 else None
    if node.op_type == "Loop":
        return _loop_macs(node, shapes, constants)
    if node.op_type == "Scan":
        return _scan_macs(node, shapes, constants)
    own = known_node_macs(node, shapes)
    inner = [_graph_macs(g, shapes, constants) for g in subgraphs(node)]
    if own is None or any(count != 0 for count in inner):  # how often an unknown op runs them
        return None
    return own


def _graph_macs(
    graph: onnx.GraphProto, shapes: Mapping[str, Shape], constants: Mapping[str, np.ndarray]
) -> int | None:
    total = 0
    for node in graph.node:
        macs = _node_macs(node, shapes, constants)
        if macs is None:
            return None
        total += macs
    return total


def _loop_macs(
    node: onnx.NodeProto, shapes: Mapping[str, Shape], constants: Mapping[str, np.ndarray]
) -> int | None:
    body = next(subgraphs(node), None)
    per_iteration = 0 if body is None else _graph_macs(body, shapes, constants)
    if per_iteration == 0 or per_iteration is None:
        return per_iteration
    trips = _scalar(constants, node.input[0] if node.input else "")
    if trips is None:
        return None
    condition = node.input[1] if len(node.input) > 1 else ""
    if condition:
        first = _scalar(constants, condition)
        if first is None or (first and not _condition_passes_through(body, constants)):
            return None  # the body decides when to stop
        if not first:
            return 0
    return int(trips) * per_iteration


def _condition_passes_through(body: onnx.GraphProto, constants: Mapping[str, np.ndarray]) -> bool:
    """Whether a Loop body hands its condition on unchanged (or as a constant true)."""
    if len(body.input) < 2 or not body.output:
        return False
    given, returned = body.input[1].name, body.output[0].name
    if returned == given or _scalar(constants, returned):
        return True
    producer = next((n for n in body.node if returned in n.output), None)
    return producer is not None and producer.op_type == "Identity" and list(producer.input) == [given]


def _scan_macs(
    node: onnx.NodeProto, shapes: Mapping[str, Shape], constants: Mapping[str, np.ndarray]
) -> int | None:
    body = next(subgraphs(node), None)
    per_iteration = 0 if body is None else _graph_macs(body, shapes, constants)
    if per_iteration == 0 or per_iteration is None:
        return per_iteration
    attrs = {a.name: a for a in node.attribute}
    scanned = attrs["num_scan_inputs"].i if "num_scan_inputs" in attrs else 0
    if scanned < 1:
        return None
    first = node.input[len(node.input) - scanned]
    axes = list(attrs["scan_input_axes"].ints) if "scan_input_axes" in attrs else [0]
    shape = shapes.get(first)
    if not shape:
        return None
    length = shape[axes[0] % len(shape)]
    if not isinstance(length, int) or length < 0:
        return None
    return length * per_iteration


def _scalar(constants: Mapping[str, np.ndarray], name: str) -> int | None:
    value = constants.get(name) if name else None
    if value is None or value.size != 1:
        return None
    return int(value.reshape(-1)[0])


def _missing_shapes(graph: onnx.GraphProto, shapes: Mapping[str, Shape]) -> bool:
    """Whether some counted operator, here or in a subgraph, lacks a shape it needs."""
    return any(known_node_macs(node, shapes) is None for node in _all_nodes(graph))


def _all_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    for node in graph.node:
        yield node
        for sub in subgraphs(node):
            yield from _all_nodes(sub)


# =============================================================================================
# Whole models


def inspect_model(
    files: ModelFiles,
    *,
    trusted: bool = False,
    input_shapes: Sequence[tuple[int, ...]] | None = None,
) -> ModelInfo:
    """Summarise a model (PyTorch models are converted, never executed on data).

    An ONNX model is run once on a sample input only when shape inference leaves a size a MAC
    count needs unknown; ``input_shapes`` gives the sizes its file leaves open.
    """
    if files.format is ModelFormat.ONNX:
        return _inspect_onnx(files, input_shapes)
    return _inspect_torch(files, trusted=trusted, input_shapes=input_shapes)


def _inspect_onnx(files: ModelFiles, input_shapes: Sequence[tuple[int, ...]] | None) -> ModelInfo:
    model = load_onnx(files, load_external_data=False)
    inputs, outputs = onnx_io_specs(model)
    layers, at = _counted(model, 1, input_shapes, files.main.parent)
    return _summary(files, model, inputs, outputs, layers, sum(layer.params for layer in layers), at)


def _inspect_torch(files: ModelFiles, *, trusted: bool, input_shapes) -> ModelInfo:
    with tempfile.TemporaryDirectory(prefix="studio-inspect-") as tmp:
        path, module, specs = export_torch_files(
            files, Path(tmp) / "model.onnx", trusted=trusted, input_shapes=input_shapes
        )
        model = load_onnx(ModelFiles(path, ModelFormat.ONNX))
        layers, at = _counted(model, 1, None, Path(tmp))
    _, outputs = onnx_io_specs(model)
    info = _summary(files, model, specs, outputs, layers, count_parameters(module), at)
    info.opset, info.producer = None, None
    return info


def _summary(
    files: ModelFiles,
    model: onnx.ModelProto,
    inputs: list[TensorSpec],
    outputs: list[TensorSpec],
    layers: list[Layer],
    params: int,
    counted_inputs: dict[str, list[int]] | None,
) -> ModelInfo:
    macs = [layer.macs for layer in layers]
    return ModelInfo(
        format=files.format.value,
        inputs=inputs,
        outputs=outputs,
        params=params,
        size_bytes=files.size_bytes(),
        op_histogram=dict(Counter(node.op_type for node in model.graph.node).most_common()),
        layers=layers,
        macs=None if None in macs else sum(m for m in macs if m is not None),
        opset=_default_opset(model),
        producer=" ".join(p for p in (model.producer_name, model.producer_version) if p) or None,
        counted_inputs=counted_inputs,
    )


def _default_opset(model: onnx.ModelProto) -> int | None:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
