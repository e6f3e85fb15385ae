"""How much each layer alone costs when it is quantized: the ranking quantize.auto works from.

Quantizing the model once per layer through ONNX Runtime's quantizer would take minutes on a
transformer. Instead one *probe* model is built from the float model: in front of every
candidate node, its float inputs pass through a quantize → dequantize pair that a boolean input
switches on, and its weight becomes an input that defaults to the float weight. Feeding one
switch and that node's 8-bit-rounded weight gives the model with only that node quantized — the
same arithmetic the integer kernels do — from a single session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from ._common import QNode

if TYPE_CHECKING:
    import onnx

Mode = Literal["dynamic", "static"]
PREFIX = "studio_probe"


@dataclass(frozen=True)
class ProbeSettings:
    mode: Mode
    per_channel: bool = True
    reduce_range: bool = False


def sensitivities(
    model: onnx.ModelProto,
    nodes: list[QNode],
    samples: list[dict[str, np.ndarray]],
    settings: ProbeSettings,
    progress: Callable[[float], None],
) -> dict[str, float]:
    """Mean (1 − cosine to the float output) over the samples, with only that node quantized.

    ``samples`` are separate runs (see :func:`split_samples`).
    """
    activations = sorted({a for n in nodes for a in n.activations})
    reference, ranges = _float_pass(model, samples, activations if settings.mode == "static" else [])
    probe = build_probe(model, nodes, settings.mode, ranges)
    session = _session(probe.SerializeToString())
    weights = {t.name: t for t in model.graph.initializer}
    result = {}
    for i, node in enumerate(nodes):
        progress(i / len(nodes))
        extra = {_flag(i): np.array(True)}
        if node.weight is not None:
            extra[node.weight] = fake_quantize_weight(weights[node.weight], node, model, settings)
        outputs = [session.run([probe.graph.output[0].name], {**s, **extra})[0] for s in samples]
        cosines = [_row_cosines(o, r) for o, r in zip(outputs, reference, strict=True)]
        result[node.name] = float(1.0 - np.concatenate(cosines).mean())
    progress(1.0)
    return result


def split_samples(feeds: dict[str, np.ndarray], batch: int) -> list[dict[str, np.ndarray]]:
    """Runs of ``batch`` samples (1 unless the model's batch is fixed): at batch 1 a dynamic
    range is one sample's, as in deployment. A short last run is filled up from the start."""
    n = len(next(iter(feeds.values())))
    runs = []
    for start in range(0, n, batch):
        idx = np.arange(start, start + batch) % n
        runs.append({k: v[idx] for k, v in feeds.items()})
    return runs


def _session(model_bytes: bytes):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def _float_pass(
    model: onnx.ModelProto, samples: list[dict[str, np.ndarray]], watched: list[str]
) -> tuple[list[np.ndarray], dict[str, tuple[float, float]]]:
    """The float model's first output per sample, and the range of each watched tensor."""
    import onnx

    augmented = onnx.ModelProto()
    augmented.CopyFrom(model)
    existing = {o.name for o in augmented.graph.output}
    graph_inputs = {i.name for i in augmented.graph.input}
    extra = [name for name in watched if name not in existing and name not in graph_inputs]
    augmented.graph.output.extend(onnx.ValueInfoProto(name=name) for name in extra)
    session = _session(augmented.SerializeToString())
    names = [o.name for o in session.get_outputs()]
    first = model.graph.output[0].name
    reference, ranges = [], {}
    for sample in samples:
        values = dict(zip(names, session.run(None, sample), strict=True))
        values.update({k: v for k, v in sample.items() if k in watched})
        reference.append(values[first])
        for name in watched:
            lo, hi = float(values[name].min()), float(values[name].max())
            old = ranges.get(name, (lo, hi))
            ranges[name] = (min(old[0], lo), max(old[1], hi))
    return reference, ranges


def build_probe(
    model: onnx.ModelProto, nodes: list[QNode], mode: Mode, ranges: dict[str, tuple[float, float]]
) -> onnx.ModelProto:
    """The float model with a switchable quantize → dequantize pair in front of each candidate."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    graph = probe.graph
    index = {n.name: i for i, n in enumerate(nodes)}
    weights = {n.weight for n in nodes if n.weight is not None}
    for init in graph.initializer:  # an initializer that is also an input can be fed a new value
        if init.name in weights:
            graph.input.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    new_nodes = []
    for node in graph.node:
        i = index.get(node.name)
        if i is not None:
            flag = _flag(i)
            graph.initializer.append(numpy_helper.from_array(np.array(False), flag))
            graph.input.append(helper.make_tensor_value_info(flag, TensorProto.BOOL, []))
            for j, name in enumerate(nodes[i].activations):
                switched, added = _fake_quant_nodes(name, f"{PREFIX}_{i}_{j}", flag, mode, ranges.get(name))
                new_nodes.extend(added)
                for k, used in enumerate(node.input):
                    if used == name:
                        node.input[k] = switched
        new_nodes.append(node)
    del graph.node[:]
    graph.node.extend(new_nodes)
    return probe


def _fake_quant_nodes(name: str, tag: str, flag: str, mode: Mode, span: tuple[float, float] | None):
    from onnx import helper, numpy_helper

    q, dq, out = f"{tag}_q", f"{tag}_dq", f"{tag}_switched"
    if mode == "dynamic" or span is None:
        s, z = f"{tag}_scale", f"{tag}_zero"
        added = [
            helper.make_node("DynamicQuantizeLinear", [name], [q, s, z], name=f"{tag}_quantize"),
            helper.make_node("DequantizeLinear", [q, s, z], [dq], name=f"{tag}_dequantize"),
        ]
    else:
        scale, zero = _uint8_params(*span)
        consts = [
            helper.make_node(
                "Constant", [], [f"{tag}_scale"], value=numpy_helper.from_array(np.array(scale, np.float32))
            ),
            helper.make_node(
                "Constant", [], [f"{tag}_zero"], value=numpy_helper.from_array(np.array(zero, np.uint8))
            ),
        ]
        names = [f"{tag}_scale", f"{tag}_zero"]
        added = [
            *consts,
            helper.make_node("QuantizeLinear", [name, *names], [q], name=f"{tag}_quantize"),
            helper.make_node("DequantizeLinear", [q, *names], [dq], name=f"{tag}_dequantize"),
        ]
    added.append(helper.make_node("Where", [flag, dq, name], [out], name=f"{tag}_switch"))
    return out, added


def _uint8_params(lo: float, hi: float) -> tuple[float, int]:
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255.0 or 1.0
    return scale, int(np.clip(round(-lo / scale), 0, 255))


def fake_quantize_weight(
    tensor: onnx.TensorProto, node: QNode, model: onnx.ModelProto, settings: ProbeSettings
) -> np.ndarray:
    """The weight rounded to symmetric 8-bit values and back, per output channel or per tensor."""
    from onnx import numpy_helper

    w = numpy_helper.to_array(tensor).astype(np.float32)
    levels = 63.0 if settings.reduce_range else 127.0
    axis = _channel_axis(node, model, w.ndim) if settings.per_channel else None
    if axis is None:
        scale = np.abs(w).max() / levels
    else:
        reduce = tuple(d for d in range(w.ndim) if d != axis)
        scale = np.abs(w).max(axis=reduce, keepdims=True) / levels
    scale = np.where(scale == 0, 1.0, scale)
    return (np.clip(np.round(w / scale), -levels, levels) * scale).astype(np.float32)


def _channel_axis(node: QNode, model: onnx.ModelProto, ndim: int) -> int | None:
    if node.op == "Conv":
        return 0
    if node.op == "ConvTranspose":
        return 1
    if node.op == "Gemm":
        proto = next(n for n in model.graph.node if n.name == node.name)
        trans_b = any(a.name == "transB" and a.i for a in proto.attribute)
        return 0 if trans_b else 1
    if node.op == "MatMul":
        return ndim - 1
    return None


def _flag(i: int) -> str:
    return f"{PREFIX}_{i}_on"


def _row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    both_zero = ~a.any(axis=1) & ~b.any(axis=1)
    safe = np.where(norms > 0, norms, 1.0)
    return np.where(norms > 0, np.einsum("ij,ij->i", a, b) / safe, np.where(both_zero, 1.0, 0.0))
