"""Moving activation outliers into the weights before quantizing (SmoothQuant), per layer.

Pretrained transformers have a few input channels whose activations are tens of times larger than
the rest. A per-tensor 8-bit activation scale then spends its range on them and rounds the other
channels away. For ``y = x · W`` the product is unchanged by ``x / s`` and ``s · W`` (one ``s`` per
input channel); choosing ``s = max|x|^α / max|W|^(1-α)`` flattens the activation and lets the
per-channel weight scales absorb the outliers. On all-MiniLM-L6-v2 with dynamic INT8, α = 0.7
raised the minimum cosine to the float model from 0.989 to 0.993 with every layer quantized
(0.5 gave 0.981, 0.9 gave 0.976). The division is one Mul node in front of the layer, so it is
applied only where it lowers that layer's error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._common import QNode

if TYPE_CHECKING:
    import onnx

ALPHA = 0.7
SCALE_LIMITS = (1e-4, 1e4)


def smoothable(nodes: list[QNode], model: onnx.ModelProto) -> list[QNode]:
    """MatMul nodes with a 2-D constant weight: the ones an input-channel scale applies to."""
    dims = {t.name: tuple(t.dims) for t in model.graph.initializer}
    return [n for n in nodes if n.op == "MatMul" and n.weight and len(dims.get(n.weight, ())) == 2]


def channel_maxima(
    model: onnx.ModelProto, nodes: list[QNode], samples: list[dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """max |x| per input channel (the last axis) of each node's activation, over the samples."""
    import onnx

    from ._probe import _session

    wanted = sorted({n.activations[0] for n in nodes})
    augmented = onnx.ModelProto()
    augmented.CopyFrom(model)
    present = {o.name for o in augmented.graph.output} | {i.name for i in augmented.graph.input}
    augmented.graph.output.extend(onnx.ValueInfoProto(name=name) for name in wanted if name not in present)
    session = _session(augmented.SerializeToString())
    names = [o.name for o in session.get_outputs()]
    maxima: dict[str, np.ndarray] = {}
    for sample in samples:
        values = {**dict(zip(names, session.run(None, sample), strict=True)), **sample}
        for name in wanted:
            value = np.abs(values[name]).reshape(-1, values[name].shape[-1]).max(axis=0)
            maxima[name] = np.maximum(maxima[name], value) if name in maxima else value
    return maxima


def smooth(
    model: onnx.ModelProto, nodes: list[QNode], maxima: dict[str, np.ndarray], alpha: float = ALPHA
) -> onnx.ModelProto:
    """A copy of ``model`` that computes the same, with ``nodes`` fed ``x / s`` and weighted ``s · W``."""
    import onnx
    from onnx import helper, numpy_helper

    result = onnx.ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    inits = {t.name: t for t in graph.initializer}
    chosen = {n.name: n for n in nodes}
    rebuilt = []
    for node in graph.node:
        target = chosen.get(node.name)
        if target is not None:
            weight = numpy_helper.to_array(inits[target.weight]).astype(np.float32)
            scale = _scales(maxima[target.activations[0]], weight, alpha)
            scaled = (
                f"{target.weight}_smoothed_{len(rebuilt)}"  # a weight may be shared: never edit it in place
            )
            graph.initializer.append(numpy_helper.from_array(weight * scale[:, None], scaled))
            inverse, divided = f"{node.name}_smooth_inverse", f"{node.name}_smoothed_input"
            graph.initializer.append(numpy_helper.from_array((1.0 / scale).astype(np.float32), inverse))
            rebuilt.append(
                helper.make_node("Mul", [node.input[0], inverse], [divided], name=f"{node.name}_smooth")
            )
            node.input[0], node.input[1] = divided, scaled
        rebuilt.append(node)
    del graph.node[:]
    graph.node.extend(rebuilt)
    used = {name for n in graph.node for name in n.input}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    return result


def _scales(activation_max: np.ndarray, weight: np.ndarray, alpha: float) -> np.ndarray:
    weight_max = np.maximum(np.abs(weight).max(axis=1), 1e-8)
    scale = np.power(np.maximum(activation_max, 1e-8), alpha) / np.power(weight_max, 1.0 - alpha)
    return np.clip(scale, *SCALE_LIMITS).astype(np.float32)
