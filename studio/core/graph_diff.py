"""What changed between two versions of a model, node by node: added, reshaped, requantized, removed.

Both versions are ONNX files (a PyTorch version is compared through its ONNX conversion, as the
graph view draws it). Nodes are matched by name first: the studio's pruning and distillation keep
every name and change initializer shapes. Quantization renames and inserts: ONNX Runtime keeps a
QDQ-wrapped Conv's name and adds QuantizeLinear/DequantizeLinear nodes around it, names an
operator-format or dynamic replacement ``<name>_quant`` (QLinearConv, ConvInteger,
MatMulInteger, QGemm) and rewrites a Gemm as ``<name>_MatMul_quant`` + ``<name>_Add``; such a
node is matched back to the float node whose name begins its own and whose op it computes. What
is left is aligned by the order of its ops. A Gemm's weight turned into a MatMul's is transposed:
weights that only swapped their dimensions are not a change of shape.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnx

ADDED, SHAPE, PRECISION, UNCHANGED, REMOVED = "added", "changed", "precision", "unchanged", "removed"
STATUSES = (ADDED, SHAPE, PRECISION, UNCHANGED, REMOVED)
LABELS = {
    ADDED: "added",
    SHAPE: "changed shape",
    PRECISION: "changed precision",
    UNCHANGED: "unchanged",
    REMOVED: "removed",
}

_QDQ = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"})
_HELPERS = _QDQ | {"Cast"}  # inserted around the work, never aligned by order
_RENAMED = {  # a quantized operator → the float operator it computes
    "ConvInteger": "Conv",
    "MatMulInteger": "MatMul",
    "MatMulIntegerToFloat": "MatMul",
    "DynamicQuantizeMatMul": "MatMul",
    "MatMulNBits": "MatMul",
    "QGemm": "Gemm",
    "QAttention": "Attention",
    "QEmbedLayerNormalization": "EmbedLayerNormalization",
    "DynamicQuantizeLSTM": "LSTM",
}
_FLOATS = {1: "FP32", 10: "FP16", 16: "BF16", 11: "FP64"}  # onnx.TensorProto data types
_INTEGERS = {3: "INT8", 2: "INT8", 5: "INT16", 4: "INT16", 22: "INT4", 21: "INT4", 17: "FP8", 19: "FP8"}


def base_op(op: str) -> str:
    """The float operator a (possibly quantized) operator computes: QLinearConv → Conv."""
    if op in _RENAMED:
        return _RENAMED[op]
    return op[len("QLinear") :] if op.startswith("QLinear") else op


def _family(op: str) -> str:
    base = base_op(op)
    return "MatMul" if base == "Gemm" else base  # a Gemm is quantized as MatMul + Add


@dataclass(frozen=True)
class NodeChange:
    """One node's fate: ``name`` as drawn in the newer graph (the older one's for a removed node)."""

    status: str
    name: str
    op_before: str | None
    op_after: str | None
    changes: tuple[str, ...] = ()
    before: str | None = None  # the older graph's name, where matching went beyond the name

    @property
    def what(self) -> str:
        return "; ".join(self.changes)

    @property
    def label(self) -> str:
        return LABELS[self.status]


@dataclass(frozen=True)
class GraphDiff:
    nodes: tuple[NodeChange, ...]

    def counts(self) -> dict[str, int]:
        found = dict.fromkeys(STATUSES, 0)
        for node in self.nodes:
            found[node.status] += 1
        return found

    def statuses(self) -> dict[str, str]:
        """Drawn node name → status (removed nodes are not in the newer graph)."""
        return {n.name: n.status for n in self.nodes if n.status != REMOVED}

    def differences(self) -> list[NodeChange]:
        return [n for n in self.nodes if n.status != UNCHANGED]

    def node(self, name: str) -> NodeChange | None:
        return next((n for n in self.nodes if n.name == name), None)


@dataclass(frozen=True)
class _Node:
    index: int
    name: str
    op: str
    precision: str | None
    output: tuple | None
    weight: tuple[int, ...] | None


# =============================================================================================
# Reading a graph


def diff_models(
    before: Path,
    after: Path,
    *,
    before_shapes: Sequence[tuple | None] | None = None,
    after_shapes: Sequence[tuple | None] | None = None,
) -> GraphDiff:
    """Compare two ONNX files. ``*_shapes``: each node's output shape in graph order, when the
    caller has them already (``studio.core.graph`` layer rows); otherwise they are inferred."""
    from studio.core.models import ModelFiles, ModelFormat, load_onnx

    models = [
        load_onnx(ModelFiles(Path(p), ModelFormat.ONNX), load_external_data=False) for p in (before, after)
    ]
    shapes = [
        list(given)
        if given is not None and len(given) == len(model.graph.node)
        else _output_shapes(model, Path(path).parent)
        for model, given, path in zip(models, (before_shapes, after_shapes), (before, after), strict=True)
    ]
    return diff_graphs(models[0], models[1], shapes[0], shapes[1])


def _output_shapes(model: onnx.ModelProto, base_dir: Path) -> list[tuple | None]:
    from studio.core.graph import onnx_layers

    return [layer.output_shape for layer in onnx_layers(model, base_dir=base_dir)]


def read_nodes(model: onnx.ModelProto, shapes: Sequence[tuple | None]) -> list[_Node]:
    """The top-level nodes, named as the layer table names them (``Op_index`` when unnamed)."""
    graph = model.graph
    types = _value_types(model)
    producers = {out: node for node in graph.node for out in node.output}
    initializers = {init.name: tuple(init.dims) for init in graph.initializer}
    nodes = []
    for index, node in enumerate(graph.node):
        shape = shapes[index] if index < len(shapes) else None
        nodes.append(
            _Node(
                index,
                node.name or f"{node.op_type}_{index}",
                node.op_type,
                _precision(node, types, producers),
                None if shape is None else tuple(shape),
                _weight_shape(node, initializers, producers),
            )
        )
    return nodes


def _value_types(model: onnx.ModelProto) -> dict[str, int]:
    """Tensor name → element type, from the file and ONNX's type inference (when it can run)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # an op or size inference refuses: the file's own types still say much
        inferred = model
    graph = inferred.graph
    types = {
        vi.name: vi.type.tensor_type.elem_type
        for vi in (*graph.input, *graph.output, *graph.value_info)
        if vi.type.HasField("tensor_type")
    }
    types.update({init.name: init.data_type for init in graph.initializer})
    for node in graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value" and node.output:
                    types[node.output[0]] = attribute.t.data_type
    return types


def _precision(node: onnx.NodeProto, types: dict[str, int], producers: dict[str, Any]) -> str | None:
    """The number format a node computes in: INT8 for quantized operators and for float ones fed
    through DequantizeLinear (QDQ), else its float inputs' format; None for quantization helpers."""
    if node.op_type in _QDQ:
        return None
    if node.op_type == "MatMulNBits":
        bits = next((a.i for a in node.attribute if a.name == "bits"), 4)
        return f"INT{bits}"
    if base_op(node.op_type) != node.op_type:
        weights = [types.get(name) for name in node.input if types.get(name) in _INTEGERS]
        return _INTEGERS[weights[-1]] if weights else "INT8"
    for name in node.input:
        source = producers.get(name)
        if source is not None and source.op_type == "DequantizeLinear" and source.input:
            return _INTEGERS.get(types.get(source.input[0], 0), "INT8")
    for name in (*node.input, *node.output):
        if types.get(name) in _FLOATS:
            return _FLOATS[types[name]]
    for name in node.input:  # moves quantized data (a Flatten between QLinear operators)
        if types.get(name) in _INTEGERS:
            return _INTEGERS[types[name]]
    return None


def _weight_shape(
    node: onnx.NodeProto, initializers: dict[str, tuple], producers: dict[str, Any]
) -> tuple[int, ...] | None:
    """The largest initializer of rank ≥ 2 a node reads, directly or through DequantizeLinear or
    Cast: its weight (biases and per-channel scales have rank 1)."""
    found = []
    for name in node.input:
        source = producers.get(name)
        if name not in initializers and source is not None and source.op_type in ("DequantizeLinear", "Cast"):
            name = source.input[0] if source.input else name
        dims = initializers.get(name)
        if dims is not None and len(dims) >= 2:
            found.append(dims)
    return max(found, key=_count, default=None)


def _count(dims: tuple[int, ...]) -> int:
    total = 1
    for d in dims:
        total *= d
    return total


# =============================================================================================
# Matching and comparing


def diff_graphs(
    before: onnx.ModelProto,
    after: onnx.ModelProto,
    before_shapes: Sequence[tuple | None] = (),
    after_shapes: Sequence[tuple | None] = (),
) -> GraphDiff:
    a_nodes, b_nodes = read_nodes(before, before_shapes), read_nodes(after, after_shapes)
    pairs = match_nodes(a_nodes, b_nodes)
    by_b = {b.index: a for a, b in pairs}
    matched_a = {a.index for a, _ in pairs}
    result = []
    for b in b_nodes:
        a = by_b.get(b.index)
        result.append(_added(b) if a is None else _compared(a, b))
    for a in a_nodes:
        if a.index not in matched_a:
            result.append(NodeChange(REMOVED, a.name, a.op, None, ("not in the newer graph",)))
    return GraphDiff(tuple(result))


def match_nodes(a_nodes: list[_Node], b_nodes: list[_Node]) -> list[tuple[_Node, _Node]]:
    """(older, newer) pairs: same name; then a quantized node to the float node its name extends;
    then what is left, by the order of its ops."""
    pairs: dict[int, _Node] = {}  # newer index → older node
    free = {a.name: a for a in a_nodes}
    for b in b_nodes:
        a = free.get(b.name)
        if a is not None:
            pairs[b.index] = free.pop(b.name)
    for b in b_nodes:
        if b.index in pairs or b.op in _HELPERS:
            continue
        stems = [
            a for a in free.values() if b.name.startswith(a.name + "_") and _family(a.op) == _family(b.op)
        ]
        if stems:
            a = max(stems, key=lambda n: len(n.name))
            pairs[b.index] = free.pop(a.name)
    rest_a = [a for a in a_nodes if a.name in free and a.op not in _HELPERS]
    rest_b = [b for b in b_nodes if b.index not in pairs and b.op not in _HELPERS]
    ops = difflib.SequenceMatcher(
        None, [_family(a.op) for a in rest_a], [_family(b.op) for b in rest_b], autojunk=False
    )
    for block in ops.get_matching_blocks():
        for k in range(block.size):
            pairs[rest_b[block.b + k].index] = rest_a[block.a + k]
    by_index = {b.index: b for b in b_nodes}
    return [(a, by_index[i]) for i, a in sorted(pairs.items())]


def _added(b: _Node) -> NodeChange:
    if b.op in _QDQ or b.op == "Cast":
        what = "quantization node" if b.op in _QDQ else "type conversion"
    else:
        what = f"new {b.precision} node" if b.precision else "new node"
    return NodeChange(ADDED, b.name, None, b.op, (what,))


def _compared(a: _Node, b: _Node) -> NodeChange:
    shape = []
    if _family(a.op) != _family(b.op):
        shape.append(f"op {a.op} → {b.op}")
    if a.output and b.output and a.output != b.output:
        shape.append(_output_change(a.output, b.output))
    if a.weight and b.weight and sorted(a.weight) != sorted(b.weight):
        shape.extend(_weight_change(a, b))
    precision = []
    if a.precision and b.precision and a.precision != b.precision:
        precision.append(f"{a.precision} → {b.precision}")
    status = SHAPE if shape else PRECISION if precision else UNCHANGED
    before = a.name if a.name != b.name else None
    return NodeChange(status, b.name, a.op, b.op, (*shape, *precision), before)


def _weight_change(a: _Node, b: _Node) -> list[str]:
    """What a changed weight adds to the output's change: nothing when its first dimension just
    follows the output channels, "inputs 32 → 16" when its second changed too (a pruned
    convolution); else both weight shapes."""
    wa, wb = a.weight or (), b.weight or ()
    channels = a.output and b.output and len(a.output) >= 3 and len(b.output) >= 3
    if (
        channels
        and len(wa) == len(wb) >= 2
        and (wa[0], wb[0]) == (a.output[1], b.output[1])
        and wa[2:] == wb[2:]
    ):
        return [] if wa[1] == wb[1] else [f"inputs {wa[1]} → {wb[1]}"]
    return [f"weights {_dims(wa)} → {_dims(wb)}"]


def _output_change(a: tuple, b: tuple) -> str:
    """ "channels 32 → 16" when only the channel (second) dimension changed, else both shapes."""
    if len(a) == len(b) >= 2 and a[:1] == b[:1] and a[2:] == b[2:]:
        kind = "channels" if len(a) >= 3 else "features"
        return f"{kind} {a[1]} → {b[1]}"
    return f"output {_dims(a)} → {_dims(b)}"


def _dims(shape: tuple) -> str:
    return "×".join("?" if d is None else str(d) for d in shape) or "scalar"
