"""The layer table: what each node of a model does, its output shape, parameters and MACs.

Everything is read from the ONNX graph with shape inference; the model is never run, so a
model that does not fit this machine's memory or has no runtime here can still be inspected.
PyTorch models are converted to a temporary ONNX file first and inspected the same way.
MACs are counted by :func:`studio.api.node_macs`, with the rules the techniques use too.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from studio.api import node_macs
from studio.core.models import (
    ModelFiles,
    ModelFormat,
    TensorSpec,
    count_parameters,
    export_torch_files,
    initializer_sizes,
    learned_inputs,
    load_onnx,
    onnx_io_specs,
    onnx_parameter_count,
)

if TYPE_CHECKING:
    import onnx

Shape = tuple[int | str | None, ...]

# Initializers larger than this are copied without their data for shape inference: only small
# ones (shape operands) matter to it, and copying the weights would double the memory.
_SMALL_INITIALIZER = 64


@dataclass
class Layer:
    name: str
    op: str
    output_shape: Shape | None
    params: int
    macs: int

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
    macs: int
    opset: int | None
    producer: str | None

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
        }


# =============================================================================================
# Layers of an ONNX graph


def onnx_layers(model: onnx.ModelProto, batch: int = 1) -> list[Layer]:
    """One row per top-level node; shapes and MACs are for a batch of ``batch``."""
    shapes = _inferred_shapes(model, batch)
    sizes = initializer_sizes(model.graph)
    counted: set[str] = set()
    layers = []
    for index, node in enumerate(model.graph.node):
        params = 0
        for name in learned_inputs(node):
            if name in sizes and name not in counted:
                counted.add(name)
                params += sizes[name]
        output = shapes.get(node.output[0]) if node.output else None
        name = node.name or f"{node.op_type}_{index}"
        layers.append(Layer(name, node.op_type, output, params, node_macs(node, shapes)))
    return layers


def _inferred_shapes(model: onnx.ModelProto, batch: int) -> dict[str, Shape]:
    import onnx

    light = _shape_only_copy(model, batch)
    try:
        inferred = onnx.shape_inference.infer_shapes(light, strict_mode=False, data_prop=True)
    except Exception:  # a graph shape inference cannot follow still gets a table, without shapes
        inferred = light
    graph = inferred.graph
    shapes = {t.name: tuple(int(d) for d in t.dims) for t in graph.initializer}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        if value.type.HasField("tensor_type") and value.type.tensor_type.HasField("shape"):
            shapes[value.name] = tuple(_dim(d) for d in value.type.tensor_type.shape.dim)
    return shapes


def _dim(d) -> int | str | None:
    if d.HasField("dim_value"):
        return d.dim_value
    return d.dim_param or None


def _shape_only_copy(model: onnx.ModelProto, batch: int) -> onnx.ModelProto:
    """The model without its weights' data, with every symbolic batch dimension set to ``batch``."""
    import onnx

    light = onnx.ModelProto()
    light.ir_version = model.ir_version
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    graph = light.graph
    graph.node.extend(model.graph.node)
    graph.input.extend(model.graph.input)
    graph.output.extend(model.graph.output)
    graph.value_info.extend(model.graph.value_info)
    for tensor in model.graph.initializer:
        graph.initializer.append(_light_tensor(tensor))
    weights = {t.name for t in graph.initializer}
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        if value.name not in weights and dims and not dims[0].HasField("dim_value"):
            dims[0].dim_value = batch
    return light


def _light_tensor(tensor: onnx.TensorProto) -> onnx.TensorProto:
    import onnx

    elements = 1
    for d in tensor.dims:
        elements *= d
    if elements <= _SMALL_INITIALIZER and tensor.data_location != onnx.TensorProto.EXTERNAL:
        return tensor
    light = onnx.TensorProto(name=tensor.name, data_type=tensor.data_type)
    light.dims.extend(tensor.dims)
    return light


# =============================================================================================
# Whole models


def inspect_model(
    files: ModelFiles,
    *,
    trusted: bool = False,
    input_shapes: Sequence[tuple[int, ...]] | None = None,
) -> ModelInfo:
    """Summarise a model without running it (PyTorch models are converted, never executed on data)."""
    if files.format is ModelFormat.ONNX:
        return _inspect_onnx(files)
    return _inspect_torch(files, trusted=trusted, input_shapes=input_shapes)


def _inspect_onnx(files: ModelFiles) -> ModelInfo:
    model = load_onnx(files, load_external_data=False)
    inputs, outputs = onnx_io_specs(model)
    return _summary(files, model, inputs, outputs, onnx_parameter_count(model))


def _inspect_torch(files: ModelFiles, *, trusted: bool, input_shapes) -> ModelInfo:
    with tempfile.TemporaryDirectory(prefix="studio-inspect-") as tmp:
        path, module, specs = export_torch_files(
            files, Path(tmp) / "model.onnx", trusted=trusted, input_shapes=input_shapes
        )
        model = load_onnx(ModelFiles(path, ModelFormat.ONNX))
    _, outputs = onnx_io_specs(model)
    info = _summary(files, model, specs, outputs, count_parameters(module))
    info.opset, info.producer = None, None
    return info


def _summary(files: ModelFiles, model, inputs, outputs, params: int) -> ModelInfo:
    layers = onnx_layers(model)
    return ModelInfo(
        format=files.format.value,
        inputs=inputs,
        outputs=outputs,
        params=params,
        size_bytes=files.size_bytes(),
        op_histogram=dict(Counter(node.op_type for node in model.graph.node).most_common()),
        layers=layers,
        macs=sum(layer.macs for layer in layers),
        opset=_default_opset(model),
        producer=" ".join(p for p in (model.producer_name, model.producer_version) if p) or None,
    )


def _default_opset(model) -> int | None:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
