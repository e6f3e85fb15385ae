"""Multiply-accumulates (MACs): the one way the studio counts a model's compute.

The layer table, the quantizers' per-node ranking and the distiller's teacher/student ratio all
count with these rules, so that a figure on one screen can be compared with a figure on another:
a student's MACs (counted on its torch layers) divide a teacher's (counted on its ONNX graph).

Every rule is "output elements × products summed into each one": a convolution's output element
sums ``C_in / groups × kernel`` products, which are the weight's dimensions after the first; a
matrix product's sums ``K``. Elementwise operators, pooling and normalisation are not counted:
they are cheap next to these and depend on the runtime's fusions.

Public through :mod:`studio.api`; this module imports nothing of the studio, so the lowest layer
can own it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx
    import torch

Shapes = Mapping[str, Sequence[int | str | None]]


def node_macs(node: onnx.NodeProto, shapes: Shapes) -> int:
    """MACs of one ONNX node, given the shapes of its tensors by name; 0 when they are unknown.

    ``shapes`` is what shape inference found (and the initializers' dims); a shape with a
    symbolic dimension counts as unknown, so fix the batch first (or map it to 1) to count it.
    Where "unknown" must not read as 0 (a layer table), use :func:`known_node_macs`.
    """
    return known_node_macs(node, shapes) or 0


def known_node_macs(node: onnx.NodeProto, shapes: Shapes) -> int | None:
    """MACs of one ONNX node, or None when a shape its rule needs is unknown.

    Operators without a rule cost 0 (they are not counted, whatever their shapes); a rule's
    operator costs None rather than 0 when shape inference left a dimension symbolic, missing
    or negative (``-1`` is how some files write "any size", and must never be multiplied in).
    """
    rule = _ONNX_RULES.get(node.op_type)
    if rule is None:
        return 0
    try:
        return rule(node, shapes)
    except (IndexError, KeyError, TypeError, ValueError):  # a shape inference could not find
        return None


def module_macs(module: torch.nn.Module, example: tuple[torch.Tensor, ...]) -> int:
    """MACs per sample of a torch module's Conv and Linear layers, found by running ``example``.

    Runs the module once (no gradients) with a hook on each such layer, so shapes are the real
    ones. The same rule as :func:`node_macs` applies, so a model counted here and its ONNX
    export counted there agree on those layers.
    """
    import torch
    from torch import nn

    total = 0

    def count(layer: torch.nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        total += conv_macs(tuple(output.shape), tuple(layer.weight.shape)) // max(output.shape[0], 1)

    dense = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
    hooks = [m.register_forward_hook(count) for m in module.modules() if isinstance(m, dense)]
    try:
        with torch.no_grad():
            module(*example)
    finally:
        for hook in hooks:
            hook.remove()
    return int(total)


# -- the formulas ----------------------------------------------------------------------------------


def conv_macs(output: Sequence[int], weight: Sequence[int]) -> int:
    """Each output element sums the weight's dims after the first: C_in / groups × kernel for a
    convolution, in_features for a Linear layer (whose weight is out × in)."""
    return _product(output) * _product(weight[1:])


def conv_transpose_macs(input_: Sequence[int], weight: Sequence[int]) -> int:
    """Each input element is spread over C_out / groups × kernel outputs."""
    return _product(input_) * _product(weight[1:])


def matmul_macs(a: Sequence[int], b: Sequence[int]) -> int:
    """Broadcast batch × M × K × N, numpy matmul semantics (1-D operands gain a dimension)."""
    import numpy as np

    a = (1, *a) if len(a) == 1 else tuple(a)
    b = (*b, 1) if len(b) == 1 else tuple(b)
    batch = np.broadcast_shapes(a[:-2], b[:-2])
    return _product(batch) * a[-2] * a[-1] * b[-1]


def gemm_macs(a: Sequence[int], b: Sequence[int], *, trans_a: bool, trans_b: bool) -> int:
    """M × K × N of ``op(A) @ op(B)``, reading the transposes from the operands' layout."""
    m, k = (a[1], a[0]) if trans_a else (a[0], a[1])
    n = b[0] if trans_b else b[1]
    return m * k * n


def _product(dims: Sequence[int]) -> int:
    total = 1
    for d in dims:
        total *= d
    return total


# -- ONNX operators --------------------------------------------------------------------------------


def _known(shapes: Shapes, name: str) -> tuple[int, ...]:
    shape = shapes[name]
    if any(not isinstance(d, int) or isinstance(d, bool) or d < 0 for d in shape):
        raise TypeError(name)
    return tuple(shape)  # type: ignore[arg-type]


def _conv_rule(weight_index: int) -> Callable[[onnx.NodeProto, Shapes], int]:
    def rule(node: onnx.NodeProto, shapes: Shapes) -> int:
        return conv_macs(_known(shapes, node.output[0]), _known(shapes, node.input[weight_index]))

    return rule


def _conv_transpose_rule(node: onnx.NodeProto, shapes: Shapes) -> int:
    return conv_transpose_macs(_known(shapes, node.input[0]), _known(shapes, node.input[1]))


def _gemm_rule(b_index: int) -> Callable[[onnx.NodeProto, Shapes], int]:
    """From the operands, so that com.microsoft variants without shape inference count too."""

    def rule(node: onnx.NodeProto, shapes: Shapes) -> int:
        attrs = {attr.name: attr.i for attr in node.attribute}
        return gemm_macs(
            _known(shapes, node.input[0]),
            _known(shapes, node.input[b_index]),
            trans_a=bool(attrs.get("transA")),
            trans_b=bool(attrs.get("transB")),
        )

    return rule


def _matmul_rule(b_index: int) -> Callable[[onnx.NodeProto, Shapes], int]:
    def rule(node: onnx.NodeProto, shapes: Shapes) -> int:
        return matmul_macs(_known(shapes, node.input[0]), _known(shapes, node.input[b_index]))

    return rule


# The operand that holds B (or the weight) differs between the float operators and their
# quantized forms, whose scales and zero points sit in between.
_ONNX_RULES: dict[str, Callable[[onnx.NodeProto, Shapes], int]] = {
    "Conv": _conv_rule(1),
    "ConvInteger": _conv_rule(1),
    "QLinearConv": _conv_rule(3),
    "ConvTranspose": _conv_transpose_rule,
    "Gemm": _gemm_rule(1),
    "QGemm": _gemm_rule(3),
    "MatMul": _matmul_rule(1),
    "MatMulInteger": _matmul_rule(1),
    "QLinearMatMul": _matmul_rule(3),
    "MatMulIntegerToFloat": _matmul_rule(1),
    "DynamicQuantizeMatMul": _matmul_rule(1),
}
