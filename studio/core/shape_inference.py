"""Tensor shapes of an ONNX graph, made as concrete as they can honestly be.

Counting MACs needs numbers, and ONNX's own shape inference leaves a symbol wherever a size is
worked out at run time (padding computed from the input's size, a resize to another tensor's
size) or left open by the file. Three sources are tried in order of cost, each only while a
shape the caller needs is still unknown:

1. ONNX shape inference with data propagation, on a copy without the weights' data;
2. ONNX Runtime's symbolic shape inference, which follows shape arithmetic further;
3. one run of the model with ONNX Runtime on a zero input of the declared shape, reading the
   shape of every intermediate tensor (a copy of the model lists them as graph outputs).

The inputs' open sizes are fixed first: the batch to the one asked for, the others from the
shapes recorded for the model. Where neither says, the run alone may pick a default size,
because only a run shows that the model accepts it; its figures are then for that size, which
:attr:`InferredShapes.inputs` records. While an input size is open, step 2 waits until after
the run: it cannot turn that symbol into a number, and the run has to fix it anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import onnx

Shape = tuple[int | str | None, ...]
Shapes = dict[str, Shape]

log = logging.getLogger(__name__)

# Tensors larger than this are copied without their data for inference: only small ones (shape
# operands) matter to it, and copying the weights would double the memory. Integer tensors are
# shape operands far more often than weights, so they keep their data up to a larger size.
_SMALL_TENSOR = 64
_SMALL_INTEGER_TENSOR = 4096
# The run is skipped above these sizes: it loads every weight and holds every activation.
_RUN_WEIGHT_BYTES = 1 << 30
_RUN_INPUT_ELEMENTS = 1 << 26
# Sizes for input dimensions nothing fixes: an image side for the trailing dimensions of 4-D and
# 5-D floating inputs, a sequence length for anything else.
_DEFAULT_IMAGE_SIDE = 224
_DEFAULT_LENGTH = 128


@dataclass
class InferredShapes:
    """Every tensor's shape that was found, by name, across the graph and its subgraphs.

    ``inputs`` holds the concrete input shapes these are for, when every input's size is known
    (from the file, the batch asked for, recorded shapes, or the run's default).
    """

    shapes: Shapes
    inputs: dict[str, tuple[int, ...]] | None


def infer_shapes(
    model: onnx.ModelProto,
    *,
    batch: int = 1,
    input_shapes: Sequence[Sequence[int]] | None = None,
    base_dir: Path | None = None,
    unknown: Callable[[Mapping[str, Shape]], bool] = lambda shapes: False,
) -> InferredShapes:
    """Shapes for ``model`` at ``batch``, going as far down the list above as ``unknown`` asks.

    ``input_shapes``: one full shape per input, in order, for the sizes the file leaves open.
    ``base_dir``: where the model's external data lies, so that the run can load its weights.
    ``unknown(shapes)`` says whether a shape the caller needs is still missing; the model is
    never changed, and is run at most once.
    """
    inputs = fixed_inputs(model, batch, input_shapes)
    light = _shape_only_copy(model, inputs)
    shapes = static_shapes(light)
    if not unknown(shapes):
        return InferredShapes(shapes, _concrete(inputs))
    if _concrete(inputs) is not None:  # while input sizes are open, only the run can fix them
        shapes = _merged(shapes, symbolic_shapes(light))
        if not unknown(shapes):
            return InferredShapes(shapes, _concrete(inputs))
    del light
    sample = sample_inputs(model, inputs)
    if sample is None:
        return InferredShapes(shapes, _concrete(inputs))
    wanted = [name for name in _node_outputs(model.graph) if not _is_concrete(shapes.get(name))]
    ran = run_shapes(model, sample, wanted, base_dir)
    if ran is None:  # the model did not accept the sample, or is too large to run here
        return InferredShapes(shapes, _concrete(inputs))
    fixed = {name: tuple(dims) for name, dims in sample.items()}
    light = _shape_only_copy(model, fixed)
    if fixed != inputs:  # the run chose sizes: what was inferred before is for other ones
        shapes = static_shapes(light)
    shapes.update(ran)
    if unknown(shapes):  # tensors inside subgraphs: a run cannot list them as outputs
        shapes = _merged(shapes, symbolic_shapes(light))
        shapes.update(ran)
    return InferredShapes(shapes, sample)


# =============================================================================================
# The inputs


def data_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """The inputs a caller feeds; initializers listed as inputs are weights with a default."""
    weights = {t.name for t in model.graph.initializer}
    return [value for value in model.graph.input if value.name not in weights]


def fixed_inputs(
    model: onnx.ModelProto, batch: int, input_shapes: Sequence[Sequence[int]] | None = None
) -> dict[str, Shape]:
    """Each tensor input's dims with the batch and the recorded sizes filled in.

    A dimension counts as open when it is a symbol, missing, or written as ``-1`` or ``0`` (how
    some exporters say "any size"); an open first dimension is the batch, and so is its symbol
    wherever else it stands (a recurrent state ``[2, batch, 128]``). Dimensions nothing fixes stay
    symbols, never numbers, so that they cannot be multiplied into a count.
    """
    fixed: dict[str, Shape] = {}
    batch_symbols = _batch_symbols(data_inputs(model))
    for index, value in enumerate(data_inputs(model)):
        if not value.type.HasField("tensor_type") or not value.type.tensor_type.HasField("shape"):
            continue
        given = input_shapes[index] if input_shapes and index < len(input_shapes) else None
        declared = value.type.tensor_type.shape.dim
        if given is not None and len(given) != len(declared):
            given = None
        dims: list[int | str | None] = []
        for i, d in enumerate(declared):
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(d.dim_value)
            elif i == 0 or (d.dim_param and d.dim_param in batch_symbols):
                dims.append(batch)
            elif given is not None and int(given[i]) > 0:
                dims.append(int(given[i]))
            else:
                dims.append(d.dim_param or f"{value.name}_dim{i}")
        fixed[value.name] = tuple(dims)
    return fixed


def _batch_symbols(values: Sequence[onnx.ValueInfoProto]) -> set[str]:
    """The names the inputs give their open first dimension: the batch's."""
    names = set()
    for value in values:
        dims = value.type.tensor_type.shape.dim if value.type.HasField("tensor_type") else ()
        if dims and not (dims[0].HasField("dim_value") and dims[0].dim_value > 0) and dims[0].dim_param:
            names.add(dims[0].dim_param)
    return names


def sample_inputs(model: onnx.ModelProto, inputs: Mapping[str, Shape]) -> dict[str, tuple[int, ...]] | None:
    """Concrete shapes for one run: open sizes get a default, one value per symbol name.

    None when an input is not a tensor of known rank, since no sample can be made for it.
    """
    import onnx

    sample: dict[str, tuple[int, ...]] = {}
    chosen: dict[str, int] = {}
    for value in data_inputs(model):
        dims = inputs.get(value.name)
        if dims is None:
            return None
        elem_type = value.type.tensor_type.elem_type
        floating = elem_type in (
            onnx.TensorProto.FLOAT,
            onnx.TensorProto.FLOAT16,
            onnx.TensorProto.DOUBLE,
            onnx.TensorProto.BFLOAT16,
        )
        concrete = []
        for i, d in enumerate(dims):
            if isinstance(d, int):
                concrete.append(d)
                continue
            image = floating and len(dims) in (4, 5) and i >= 2
            default = _DEFAULT_IMAGE_SIDE if image else _DEFAULT_LENGTH
            concrete.append(chosen.setdefault(str(d), default))
        sample[value.name] = tuple(concrete)
    return sample


def _concrete(inputs: Mapping[str, Shape]) -> dict[str, tuple[int, ...]] | None:
    if not all(_is_concrete(dims) for dims in inputs.values()):
        return None
    return {name: tuple(int(d) for d in dims) for name, dims in inputs.items()}  # type: ignore[arg-type]


def _is_concrete(shape: Shape | None) -> bool:
    return shape is not None and all(isinstance(d, int) and d >= 0 for d in shape)


# =============================================================================================
# 1. ONNX shape inference


def static_shapes(light: onnx.ModelProto) -> Shapes:
    """ONNX's shape inference with data propagation; a graph it cannot follow keeps what it has."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(light, strict_mode=False, data_prop=True)
    except Exception as exc:  # a graph shape inference cannot follow still gets its declared shapes
        log.debug("ONNX shape inference failed: %s", exc)
        inferred = light
    return _graph_shapes(inferred.graph)


def _graph_shapes(graph: onnx.GraphProto) -> Shapes:
    """Declared and inferred shapes of a graph and, recursively, of its subgraphs."""
    shapes: Shapes = {t.name: tuple(int(d) for d in t.dims) for t in graph.initializer}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        if value.type.HasField("tensor_type") and value.type.tensor_type.HasField("shape"):
            shapes[value.name] = tuple(_dim(d) for d in value.type.tensor_type.shape.dim)
    for sub in _subgraphs_of(graph):
        for name, shape in _graph_shapes(sub).items():
            shapes.setdefault(name, shape)
    return shapes


def _dim(d: onnx.TensorShapeProto.Dimension) -> int | str | None:
    if d.HasField("dim_value"):
        return d.dim_value if d.dim_value >= 0 else None
    return d.dim_param or None


# =============================================================================================
# 2. ONNX Runtime's symbolic shape inference


def symbolic_shapes(light: onnx.ModelProto) -> Shapes:
    """ONNX Runtime's symbolic shape inference; empty when it is missing or gives up.

    Its public ``infer_shapes`` saves the half-inferred model into the working directory
    when a shape stays unknown, which is the very case this is called for; the same steps are
    taken here without that file.
    """
    try:
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference
    except ImportError:
        return {}
    try:
        inference = SymbolicShapeInference(2**31 - 1, True, False, 0)
        if not all(
            hasattr(inference, step) for step in ("_preprocess", "_infer_impl", "_update_output_from_vi")
        ):
            return {}
        inference._preprocess(light)
        while inference.run_:
            inference._infer_impl()
        inference._update_output_from_vi()
        return _graph_shapes(inference.out_mp_.graph)
    except Exception as exc:  # an operator it does not know, a shape it cannot reconcile
        log.debug("symbolic shape inference failed: %s", exc)
        return {}


def _merged(first: Shapes, second: Shapes) -> Shapes:
    """Both sources' shapes; where they differ, the one with more concrete dimensions."""
    merged = dict(first)
    for name, shape in second.items():
        old = merged.get(name)
        if old is None or _concreteness(shape) > _concreteness(old):
            merged[name] = shape
    return merged


def _concreteness(shape: Shape) -> int:
    return sum(isinstance(d, int) for d in shape)


# =============================================================================================
# 3. One run with ONNX Runtime


def run_shapes(
    model: onnx.ModelProto,
    sample: Mapping[str, tuple[int, ...]],
    names: Sequence[str],
    base_dir: Path | None,
) -> Shapes | None:
    """The shapes of ``names`` (and the outputs) after one run on zeros of the sample's shapes.

    None when the model is too large to run here, its external weights cannot be found, or the
    run fails (the model rejects the sample size, or an operator is missing here).
    """
    import numpy as np

    if _weight_bytes(model.graph) > _RUN_WEIGHT_BYTES:
        return None
    if sum(int(np.prod(dims)) for dims in sample.values()) > _RUN_INPUT_ELEMENTS:
        return None
    try:
        feeds = _zero_feeds(model, sample)
        copy = _with_outputs(model, names, base_dir)
        if copy is None:
            return None
        serialized = copy.SerializeToString()
        del copy  # one copy of the weights at a time besides the caller's
        return _run(serialized, feeds)
    except Exception as exc:  # the run is a best effort: without it, counts stay unknown
        log.debug("run for shapes failed: %s", exc)
        return None


def _zero_feeds(model: onnx.ModelProto, sample: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Zeros, except ones for masks so that no position is masked out entirely."""
    import numpy as np
    import onnx

    feeds = {}
    for value in data_inputs(model):
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type))
        fill = np.ones if dtype.kind == "b" or "mask" in value.name.lower() else np.zeros
        feeds[value.name] = fill(sample[value.name], dtype=dtype)
    return feeds


def _with_outputs(
    model: onnx.ModelProto, names: Sequence[str], base_dir: Path | None
) -> onnx.ModelProto | None:
    """A copy of the model, with its weights' data, that also returns the tensors in ``names``."""
    import onnx
    from onnx import external_data_helper

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    if any(external_data_helper.uses_external_data(t) for t in _tensors(copy.graph)):
        if base_dir is None:
            return None
        external_data_helper.load_external_data_for_model(copy, str(base_dir))
    present = {value.name for value in copy.graph.output}
    for name in names:
        if name not in present:
            copy.graph.output.append(onnx.ValueInfoProto(name=name))
            present.add(name)
    return copy


def _run(serialized: bytes, feeds: Mapping[str, np.ndarray]) -> Shapes:
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 4  # a model rejecting the sample is an expected answer, not an error
    session = ort.InferenceSession(serialized, options, providers=["CPUExecutionProvider"])
    quiet = ort.RunOptions()
    quiet.log_severity_level = 4
    names = [output.name for output in session.get_outputs()]
    shapes: Shapes = {name: tuple(array.shape) for name, array in feeds.items()}
    for name, value in zip(names, session.run(names, dict(feeds), quiet), strict=True):
        if isinstance(value, np.ndarray):
            shapes[name] = tuple(int(d) for d in value.shape)
    return shapes


def _weight_bytes(graph: onnx.GraphProto) -> int:
    import onnx

    total = 0
    for tensor in _tensors(graph):
        try:
            itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
        except (KeyError, TypeError, ValueError):
            itemsize = 4
        total += _elements(tensor.dims) * itemsize
    return total


# =============================================================================================
# The copy inference reads


def _shape_only_copy(model: onnx.ModelProto, inputs: Mapping[str, Shape]) -> onnx.ModelProto:
    """The model without its weights' data, its inputs' dims set to ``inputs``.

    ``Constant`` nodes become initializers: both inferences then see every constant the same
    way, and neither needs the data of a large one.
    """
    import onnx

    light = onnx.ModelProto()
    light.ir_version = max(model.ir_version, 4)  # initializers need not be graph inputs from IR 4
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    light.graph.CopyFrom(_light_graph(model.graph))
    for value in light.graph.input:
        if value.name in inputs and value.type.HasField("tensor_type"):
            shape = value.type.tensor_type.shape
            shape.ClearField("dim")
            for d in inputs[value.name]:
                if isinstance(d, int):
                    shape.dim.add().dim_value = d
                else:
                    shape.dim.add().dim_param = str(d)
    return light


def _light_graph(graph: onnx.GraphProto) -> onnx.GraphProto:
    import onnx

    light = onnx.GraphProto(name=graph.name)
    light.input.extend(graph.input)
    light.output.extend(graph.output)
    light.value_info.extend(graph.value_info)
    light.initializer.extend(_light_tensor(t) for t in graph.initializer)
    for sparse in graph.sparse_initializer:
        dense = onnx.TensorProto(name=sparse.values.name, data_type=sparse.values.data_type)
        dense.dims.extend(sparse.dims)
        light.initializer.append(dense)
    for node in graph.node:
        tensor = constant_tensor(node)
        if tensor is not None:
            light.initializer.append(_light_tensor(tensor))
        elif any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            light.node.append(_light_node(node))
        else:
            light.node.append(node)
    return light


def _light_node(node: onnx.NodeProto) -> onnx.NodeProto:
    import onnx

    light = onnx.NodeProto(name=node.name, op_type=node.op_type, domain=node.domain)
    light.input.extend(node.input)
    light.output.extend(node.output)
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            copy = onnx.AttributeProto(name=attr.name, type=attr.type)
            copy.g.CopyFrom(_light_graph(attr.g))
            light.attribute.append(copy)
        elif attr.type == onnx.AttributeProto.GRAPHS:
            copy = onnx.AttributeProto(name=attr.name, type=attr.type)
            copy.graphs.extend(_light_graph(g) for g in attr.graphs)
            light.attribute.append(copy)
        else:
            light.attribute.append(attr)
    return light


def _light_tensor(tensor: onnx.TensorProto) -> onnx.TensorProto:
    import onnx

    integer = tensor.data_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32)
    limit = _SMALL_INTEGER_TENSOR if integer else _SMALL_TENSOR
    if _elements(tensor.dims) <= limit and tensor.data_location != onnx.TensorProto.EXTERNAL:
        return tensor
    light = onnx.TensorProto(name=tensor.name, data_type=tensor.data_type)
    light.dims.extend(tensor.dims)
    return light


def constant_tensor(node: onnx.NodeProto) -> onnx.TensorProto | None:
    """The tensor a ``Constant`` node produces, named after its output; None for other nodes.

    A sparse value comes back as a dense tensor's type and dims without data: what shape
    inference and parameter counting read of it.
    """
    import onnx

    if node.op_type != "Constant" or node.domain not in ("", "ai.onnx") or len(node.output) != 1:
        return None
    for attr in node.attribute:
        name = node.output[0]
        if attr.name == "value":
            tensor = onnx.TensorProto()
            tensor.CopyFrom(attr.t)
            tensor.name = name
            return tensor
        if attr.name == "sparse_value":
            dense = onnx.TensorProto(name=name, data_type=attr.sparse_tensor.values.data_type)
            dense.dims.extend(attr.sparse_tensor.dims)
            return dense
        if attr.name in ("value_float", "value_int"):
            value = attr.f if attr.name == "value_float" else attr.i
            kind = onnx.TensorProto.FLOAT if attr.name == "value_float" else onnx.TensorProto.INT64
            return onnx.helper.make_tensor(name, kind, [], [value])
        if attr.name in ("value_floats", "value_ints"):
            values = list(attr.floats) if attr.name == "value_floats" else list(attr.ints)
            kind = onnx.TensorProto.FLOAT if attr.name == "value_floats" else onnx.TensorProto.INT64
            return onnx.helper.make_tensor(name, kind, [len(values)], values)
    return None  # strings: neither a shape operand nor a weight


def constant_values(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Small constants with their data (initializers and Constant nodes, subgraphs included):
    the shapes a ConstantOfShape fills, a Loop's trip count and condition.

    Large or external tensors are left out: they are weights, whose values no count reads.
    """
    import onnx
    from onnx import numpy_helper

    values: dict[str, np.ndarray] = {}
    tensors = list(graph.initializer) + [t for n in graph.node if (t := constant_tensor(n)) is not None]
    for tensor in tensors:
        if (
            tensor.data_location == onnx.TensorProto.EXTERNAL
            or _elements(tensor.dims) > _SMALL_INTEGER_TENSOR
        ):
            continue
        try:
            values[tensor.name] = numpy_helper.to_array(tensor)
        except Exception:  # a type numpy cannot hold, or a sparse value's missing data
            continue
    for sub in _subgraphs_of(graph):
        values.update(constant_values(sub))
    return values


# =============================================================================================
# Walking graphs


def _subgraphs_of(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    for node in graph.node:
        yield from subgraphs(node)


def subgraphs(node: onnx.NodeProto) -> Iterator[onnx.GraphProto]:
    """The graphs a node holds (an If's branches, a Loop's or Scan's body)."""
    for attr in node.attribute:
        if attr.HasField("g"):
            yield attr.g
        yield from attr.graphs


def _tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Initializers and Constant values of a graph and its subgraphs, the stored data's owners."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
        for sub in subgraphs(node):
            yield from _tensors(sub)


def _node_outputs(graph: onnx.GraphProto) -> list[str]:
    return [name for node in graph.node for name in node.output if name]


def _elements(dims: Sequence[int]) -> int:
    count = 1
    for d in dims:
        count *= int(d)
    return count
