"""Where a model's multiply-adds are, counted on the shapes of a real input.

quantize.auto picks static quantization for convolutional networks and dynamic for matrix-product
ones, and quantize.dynamic warns about convolutions; both go by this share. Counted on the graph's
declared shapes it misleads: with a symbolic height and width (text recognisers, detectors) a
convolution's output is 1 × 1 or unknown and its multiply-adds come out near 0, so a network that
spends almost all its time in convolutions read as "matrix products hold 100 %".

So the input's symbolic dimensions are first fixed from a real sample (a dataset sample, or the
model's own example input where only the batch is free), shapes are inferred from there, and
what inference cannot tell (a reshape computed from the input's shape) is measured by running
that sample once. Where even that fails, the share is the count of layers of each kind, and it
says so: a share is never stated that was not counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from studio.api import Context, node_macs

from . import _common as common

if TYPE_CHECKING:
    import onnx

COUNTED_OPS = ("MatMul", "Gemm", *common.CONV_OPS)
# Which of a node's tensors its multiply-add rule reads (see studio.api.node_macs).
NEEDED = {"Conv": ("o0", "i1"), "ConvTranspose": ("i0", "i1"), "MatMul": ("i0", "i1"), "Gemm": ("i0", "i1")}


@dataclass(frozen=True)
class ComputeShare:
    """The convolutions' share of the weighted compute, and how it was found.

    ``counted`` is "macs" when multiply-adds were counted on real shapes, "layers" when only the
    layers of each kind could be counted; ``shape`` is the sample's input shapes.
    """

    conv: float
    counted: str
    conv_layers: int
    layers: int
    shape: dict[str, list[int]] | None = None

    def conv_phrase(self) -> str:
        if self.counted == "macs":
            return f"convolutions hold {self.conv:.0%} of the multiply-adds"
        return (
            f"{self.conv_layers} of the {self.layers} weighted layers are convolutions (their multiply-adds "
            "could not be counted on a real input's shapes)"
        )

    def matmul_phrase(self) -> str:
        if self.counted == "macs":
            return f"matrix products hold {1 - self.conv:.0%} of the multiply-adds"
        return (
            f"{self.layers - self.conv_layers} of the {self.layers} weighted layers are matrix products (their "
            "multiply-adds could not be counted on a real input's shapes)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "conv_share": self.conv,
            "counted": self.counted,
            "conv_layers": self.conv_layers,
            "layers": self.layers,
            "input_shapes": self.shape,
        }


def conv_share(ctx: Context) -> ComputeShare:
    """The input model's convolution share, counted on a real sample where there is one."""
    import onnx

    path = ctx.model.onnx_path().resolve()
    graph_only = onnx.load(str(path), load_external_data=False)
    nodes = [n for n in graph_only.graph.node if n.op_type in COUNTED_OPS]
    conv_layers = sum(n.op_type in common.CONV_OPS for n in nodes)
    by_layers = ComputeShare(conv_layers / len(nodes) if nodes else 0.0, "layers", conv_layers, len(nodes))
    sample = sample_feeds(ctx, graph_only)
    if sample is None or not nodes:
        return by_layers
    shapes = real_shapes(graph_only, path, sample, nodes)
    if shapes is None:
        return by_layers
    macs = [node_macs(n, shapes) for n in nodes]
    conv = sum(m for m, n in zip(macs, nodes, strict=True) if n.op_type in common.CONV_OPS)
    total = sum(macs)
    if not total:
        return by_layers
    shape = {k: list(v.shape) for k, v in sample.items()}
    return ComputeShare(conv / total, "macs", conv_layers, len(nodes), shape)


# -- a real sample --------------------------------------------------------------------------------


def sample_feeds(ctx: Context, model: onnx.ModelProto) -> dict[str, np.ndarray] | None:
    """One batch the graph accepts: the first dataset sample, or an example input when the
    model's description fixes every dimension but the batch; None when neither is there."""
    fixed = ctx.model.fixed_inputs()  # a state, a sample rate: fed as they always are
    names = [name for name in graph_inputs(model) if name not in fixed]
    batch = common.fixed_batch(model, ctx.model) or 1
    for split in ("validation", "calibration", "train"):
        data = ctx.dataset(split)
        if data is not None and len(data):
            feeds = data.feeds()
            keys = names if set(feeds) == set(names) else list(feeds)
            if len(keys) == len(names):
                idx = np.arange(batch) % len(data)
                return {**{name: feeds[key][idx] for name, key in zip(names, keys, strict=True)}, **fixed}
    specs = [spec for spec in ctx.model.inputs if spec.name not in fixed]
    if len(specs) != len(names) or any(not _fixed(spec.shape[1:]) for spec in specs):
        return None
    rng = np.random.default_rng(0)
    feeds = {}
    for name, spec in zip(names, specs, strict=True):
        shape = (batch, *spec.shape[1:]) if spec.shape else ()
        dtype = np.dtype(spec.dtype)
        floating = np.issubdtype(dtype, np.floating)
        feeds[name] = rng.standard_normal(shape).astype(dtype) if floating else np.zeros(shape, dtype)
    return {**feeds, **fixed}


def graph_inputs(model: onnx.ModelProto) -> list[str]:
    weights = common.initializer_names(model)
    return [i.name for i in model.graph.input if i.name not in weights]


def _fixed(dims: tuple) -> bool:
    return all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dims)


# -- its shapes -----------------------------------------------------------------------------------


def real_shapes(
    model: onnx.ModelProto, path: Path, sample: dict[str, np.ndarray], nodes: list[onnx.NodeProto]
) -> dict[str, tuple[int, ...]] | None:
    """Every tensor the counted nodes read, shaped as ``sample`` makes them; None when unknown."""
    shapes = inferred_shapes(model, sample)
    missing = sorted({name for n in nodes for name in needed(n) if name not in shapes})
    if missing:
        measured = measured_shapes(path, sample, missing)
        if measured is None:
            return None
        shapes.update(measured)
    return shapes


def needed(node: onnx.NodeProto) -> list[str]:
    return [
        (node.output if where[0] == "o" else node.input)[int(where[1:])] for where in NEEDED[node.op_type]
    ]


def inferred_shapes(model: onnx.ModelProto, sample: dict[str, np.ndarray]) -> dict[str, tuple[int, ...]]:
    """ONNX shape inference from the sample's input shapes; only fully known shapes are kept."""
    import onnx

    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    for value in fixed.graph.input:
        if value.name in sample:
            dims = value.type.tensor_type.shape.dim
            del dims[:]
            for size in sample[value.name].shape:
                dims.add().dim_value = size
    try:
        graph = onnx.shape_inference.infer_shapes(fixed, data_prop=True).graph
    except Exception:  # a graph inference rejects is measured instead
        graph = fixed.graph
    shapes = {t.name: tuple(t.dims) for t in graph.initializer}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        t = value.type.tensor_type
        if t.HasField("shape") and all(d.HasField("dim_value") and d.dim_value > 0 for d in t.shape.dim):
            shapes[value.name] = tuple(d.dim_value for d in t.shape.dim)
    return shapes


def measured_shapes(
    path: Path, sample: dict[str, np.ndarray], names: list[str]
) -> dict[str, tuple[int, ...]] | None:
    """Run the sample once with ``names`` as extra outputs and read their shapes."""
    import onnx
    import onnxruntime as ort

    if common.file_size(path) > common.LARGE_MODEL_BYTES:
        return None  # too large to hold twice in memory for one count
    try:
        model = onnx.load(str(path))
        present = {o.name for o in model.graph.output}
        model.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names if n not in present)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        values = session.run(names, sample)
    except Exception:  # a model that does not run here is counted by its layers
        return None
    return {name: tuple(np.shape(v)) for name, v in zip(names, values, strict=True)}
