"""Counting a model's learned values the same way for ONNX and PyTorch, so versions compare.

An ONNX graph stores more than weights as initializers (shapes, axes, quantization scales and
zero points); only tensors that some node reads as a learned input count, each once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    """Parameters of an ONNX ModelProto or a torch module (told apart without importing either)."""
    if type(model).__name__ == "ModelProto":
        return onnx_parameter_count(model)
    return torch_parameter_count(model)
