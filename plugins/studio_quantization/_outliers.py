"""Keeping a layer's few outlier input channels in float (LLM.int8()'s mixed-precision split).

Pretrained transformers route a handful of hidden channels through activations far larger than
the rest: in all-MiniLM-L6-v2 one LayerNorm channel peaks at 28 where the median channel peaks at
1.8. Dynamic INT8 gives a whole activation one scale, so those channels set it and every other
channel is rounded coarsely. For ``y = x · W`` this splits the product: the INT8 MatMul is fed
``x`` with the outlier channels zeroed, and ``x[..., idx] · W[idx]``, a few channels wide, is added
back in float. In float the split model computes exactly what the original does. Layers that
share an input share the zeroing and the gather.

On all-MiniLM-L6-v2 (every MatMul split, minimum cosine to the float model over the 320 sentences
of the benchmarks' sentences_heldout.txt):
per-channel dynamic INT8 0.969; split off, the 4 largest channels 0.994, those peaking above 6
times the median channel (mostly one) 0.992, above 4 times (up to 8) 0.992. Each split costs a Mul,
a Gather, a small MatMul and an Add: about 0.1 ms per layer at sequence length 128 on one core,
whatever the number of channels; keeping a layer whole in float costs about 0.45 ms on average.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._common import QNode

if TYPE_CHECKING:
    import onnx

CHANNELS = 4  # split off this many channels per input, the largest peaks
FLOAT_PRODUCT = "_outlier_product"  # suffix of the float MatMul each split adds


def outlier_channels(maxima: np.ndarray) -> np.ndarray:
    """The channels to keep in float: the largest peaks (all of them for a narrow input)."""
    return np.sort(np.argsort(-maxima, kind="stable")[: min(CHANNELS, len(maxima) - 1)]).astype(np.int64)


def split(
    model: onnx.ModelProto, nodes: list[QNode], maxima: dict[str, np.ndarray]
) -> tuple[onnx.ModelProto, list[str]]:
    """A copy of ``model`` with each of ``nodes`` split, and the float products to leave unquantized.

    ``nodes`` are MatMuls with a 2-D constant weight (``_smooth.smoothable``); ``maxima`` holds the
    peak |x| per channel of their inputs. A node's weight is never edited (it may be shared): the
    zeroed channels make its rows there irrelevant.
    """
    import onnx
    from onnx import helper, numpy_helper

    result = onnx.ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    chosen = {n.name for n in nodes}
    groups: dict[str, list] = {}
    for node in graph.node:  # x · W only: a weight on the left would need the split the other way
        if node.name in chosen and node.input[1] in inits and node.input[0] in maxima:
            groups.setdefault(node.input[0], []).append(node)

    before: dict[str, list] = {}  # node name -> nodes to insert in front of it
    after: dict[str, list] = {}  # node name -> nodes to insert behind it
    products = []
    for x, members in groups.items():
        idx = outlier_channels(maxima[x])
        if not len(idx):  # a single input channel: nothing to split off
            continue
        stem = members[0].name
        kept, masked, picked = f"{stem}_inlier_mask", f"{stem}_inliers", f"{stem}_outliers"
        mask = np.ones(len(maxima[x]), dtype=np.float32)
        mask[idx] = 0.0
        graph.initializer.extend(
            [numpy_helper.from_array(mask, kept), numpy_helper.from_array(idx, f"{stem}_outlier_index")]
        )
        before[stem] = [
            helper.make_node("Mul", [x, kept], [masked], name=f"{stem}_zero_outliers"),
            helper.make_node(
                "Gather", [x, f"{stem}_outlier_index"], [picked], name=f"{stem}_gather_outliers", axis=-1
            ),
        ]
        for node in members:
            weight = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
            rows = f"{node.name}_outlier_rows"
            graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(weight[idx]), rows))
            node.input[0] = masked
            tail = _bias_add(node, consumers, inits) or node  # join after the bias, which INT8 fuses
            joined, partial, extra = (
                tail.output[0],
                f"{node.name}_inlier_product",
                f"{node.name}_outlier_part",
            )
            tail.output[0] = partial
            product = f"{node.name}{FLOAT_PRODUCT}"
            after.setdefault(tail.name, []).extend(
                [
                    helper.make_node("MatMul", [picked, rows], [extra], name=product),
                    helper.make_node("Add", [partial, extra], [joined], name=f"{node.name}_join_outliers"),
                ]
            )
            products.append(product)

    rebuilt = []
    for node in graph.node:
        rebuilt.extend(before.get(node.name, []))
        rebuilt.append(node)
        rebuilt.extend(after.get(node.name, []))
    del graph.node[:]
    graph.node.extend(rebuilt)
    return result, products


def _bias_add(node, consumers: dict[str, list], inits: dict) -> object | None:
    """The Add of a constant that is the only reader of ``node``'s output, if there is one."""
    readers = consumers.get(node.output[0], [])
    if len(readers) == 1 and readers[0].op_type == "Add" and any(i in inits for i in readers[0].input):
        return readers[0]
    return None
