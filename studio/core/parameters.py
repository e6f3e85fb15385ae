"""Counting a model's learned values the same way for ONNX and PyTorch, so versions compare.

This module is the one rule for "what is a parameter" of an ONNX graph: the layer table
(:mod:`studio.core.graph`), a version's figures and :func:`count_parameters` all read it here.
Weights live in initializers (dense or sparse), in ``Constant`` nodes, in ``ConstantOfShape``
nodes of a constant shape, and inside the subgraphs of If, Loop and Scan. An ONNX graph stores
more there than weights (shapes, axes, quantization scales and zero points, literals of the
code), so a tensor counts only when some node reads it as a learned input on the way to the
graph's outputs, and each counts once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from studio.core.shape_inference import constant_tensor, constant_values, subgraphs

if TYPE_CHECKING:
    import numpy as np
    import onnx
    import torch

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
    yield from _operands(node)
    for graph in subgraphs(node):
        for inner in graph.node:
            yield from learned_inputs(inner)


def _operands(node: onnx.NodeProto) -> Iterator[str]:
    """The node's own inputs that may be learned values (not its subgraphs')."""
    skip = _NOT_LEARNED_INPUTS.get(node.op_type, frozenset())
    yield from (name for i, name in enumerate(node.input) if name and i not in skip)


# =============================================================================================
# Where weights live


# Indices, shapes and flags are never learned values, whatever operand they fill.
_NOT_WEIGHT_TYPES = frozenset({7, 8, 9})  # INT64, STRING, BOOL
# These read their input's shape, not its values: a weight they read is not used as one.
_SHAPE_READERS = frozenset({"Shape", "Size"})


def initializer_sizes(graph: onnx.GraphProto) -> dict[str, int]:
    """Element count of every initializer of a graph and its subgraphs (data need not be loaded).

    Every initializer, shapes and scales included: what a file stores, not what it learned
    (for that, :func:`weight_sizes` and :func:`node_parameters`).
    """
    sizes: dict[str, int] = {}
    for g in _graphs(graph):
        sizes.update({t.name: _elements(t.dims) for t in g.initializer})
        sizes.update({s.values.name: _elements(s.dims) for s in g.sparse_initializer})
    return sizes


def weight_sizes(graph: onnx.GraphProto, constants: Mapping[str, np.ndarray] | None = None) -> dict[str, int]:
    """Element count of every tensor that may hold weights, by name, in a graph and its subgraphs.

    Initializers (dense and sparse), ``Constant`` nodes, and ``ConstantOfShape`` nodes whose
    shape is a constant (``constants``: :func:`constant_values` of the graph, found here when
    not given). A Constant's scalar is a literal written in code (a 0.5 in GELU, an epsilon),
    not a learned value; an initializer's is kept, as exporters store learned scalars there.
    """
    if constants is None:
        constants = constant_values(graph)
    sizes: dict[str, int] = {}
    for g in _graphs(graph):
        for tensor in g.initializer:
            if tensor.data_type not in _NOT_WEIGHT_TYPES:
                sizes[tensor.name] = _elements(tensor.dims)
        for sparse in g.sparse_initializer:
            sizes[sparse.values.name] = _elements(sparse.dims)
        for node in g.node:
            size = _node_weight_size(node, constants)
            if size is not None:
                sizes[node.output[0]] = size
    return sizes


def _node_weight_size(node: onnx.NodeProto, constants: Mapping[str, np.ndarray]) -> int | None:
    """Elements of the weight a Constant or ConstantOfShape node makes; None for other nodes."""
    tensor = constant_tensor(node)
    if tensor is not None:
        return _elements(tensor.dims) if tensor.dims and tensor.data_type not in _NOT_WEIGHT_TYPES else None
    if node.op_type != "ConstantOfShape" or not node.input or node.input[0] not in constants:
        return None
    fill = next((a.t for a in node.attribute if a.name == "value"), None)
    dims = [int(d) for d in constants[node.input[0]].reshape(-1)]
    if (fill is not None and fill.data_type in _NOT_WEIGHT_TYPES) or any(d < 0 for d in dims):
        return None
    return _elements(dims)


def read_as_weights(graph: onnx.GraphProto) -> set[str]:
    """Names read as operands of computation whose result reaches the graph's outputs.

    This leaves out constants that only feed shape arithmetic (the padding an EfficientNet
    works out from its input's size, a reshape's target) and nodes nothing reads. A subgraph
    is followed the same way from its own outputs, when its node's result is reached; the
    names it reads from the scope around it count too. Walked backwards until nothing changes,
    so a graph stored out of order is still followed.
    """
    reached = {value.name for value in graph.output}
    inner: dict[int, set[str]] = {}  # per node with subgraphs, found once
    while True:
        before = len(reached)
        for index in range(len(graph.node) - 1, -1, -1):
            node = graph.node[index]
            if node.op_type in _SHAPE_READERS or not any(name in reached for name in node.output):
                continue
            reached.update(_operands(node))
            if index not in inner:
                inner[index] = set().union(*(read_as_weights(sub) for sub in subgraphs(node)))
            reached.update(inner[index])
        if len(reached) == before:
            return reached


def node_parameters(graph: onnx.GraphProto, constants: Mapping[str, np.ndarray] | None = None) -> list[int]:
    """Learned values per top-level node, in the graph's order: the weights it (or a subgraph it
    holds) reads, each weight given to the first node that reads it so that none counts twice."""
    sizes = weight_sizes(graph, constants)
    weights = read_as_weights(graph) - _weight_scales(graph)
    counted: set[str] = set()
    per_node = []
    for node in graph.node:
        params = 0
        for name in learned_inputs(node):
            if name in sizes and name in weights and name not in counted:
                counted.add(name)
                params += sizes[name]
        per_node.append(params)
    return per_node


def _weight_scales(graph: onnx.GraphProto) -> set[str]:
    """Per-channel weight scales of dynamic quantization, multiplied into the activations' scale.

    ONNX Runtime writes ``Mul(DynamicQuantizeLinear's scale, weight scale)``; that weight scale is
    a plain Mul operand, which would otherwise count as learned and make an int8 model look
    bigger than its float parent.
    """
    activation_scales = {
        node.output[1]
        for node in graph.node
        if node.op_type == "DynamicQuantizeLinear" and len(node.output) > 1
    }
    return {
        name
        for node in graph.node
        if node.op_type == "Mul" and activation_scales.intersection(node.input)
        for name in node.input
        if name not in activation_scales
    }


def _graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """A graph and, recursively, every subgraph its nodes hold."""
    yield graph
    for node in graph.node:
        for sub in subgraphs(node):
            yield from _graphs(sub)


def _elements(dims: Sequence[int]) -> int:
    count = 1
    for d in dims:
        count *= int(d)
    return count


# =============================================================================================
# Whole models


def onnx_parameter_count(model: onnx.ModelProto) -> int:
    """Learned values of an ONNX model: the sum of :func:`node_parameters`, the layer table's rule."""
    return sum(node_parameters(model.graph))


def torch_parameter_count(module: torch.nn.Module) -> int:
    """Parameters of the module; tied weights are one tensor and count once."""
    return sum(p.numel() for p in module.parameters())


def count_parameters(model: Any) -> int:
    """Parameters of an ONNX ModelProto or a torch module (told apart without importing either)."""
    if type(model).__name__ == "ModelProto":
        return onnx_parameter_count(model)
    return torch_parameter_count(model)
