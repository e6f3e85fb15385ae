"""Steps every quantization technique shares: a float model ready to quantize, the nodes that
can be quantized and how much compute they hold, and a check of the result against the float model.

Everything here works on ONNX: a PyTorch input is exported once by the studio
(``ctx.model.onnx_path()``) and quantized like any ONNX file, because ONNX Runtime is where the
integer kernels are and ``torch.ao`` quantization is deprecated and does not export to ONNX.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.api import Context, ModelHandle, ParameterError, first_line, node_macs

if TYPE_CHECKING:
    import numpy as np
    import onnx

# Operators that hold most of a network's multiply-adds, and how their weight is laid out.
WEIGHTED_OPS = ("MatMul", "Gemm", "Conv", "ConvTranspose", "Gather")
CONV_OPS = ("Conv", "ConvTranspose")
QUANTIZED_OPS = frozenset(
    {
        "QuantizeLinear",
        "DequantizeLinear",
        "DynamicQuantizeLinear",
        "MatMulInteger",
        "ConvInteger",
        "QLinearConv",
        "QLinearMatMul",
        "DynamicQuantizeMatMul",
        "QGemm",
        "QAttention",
        "DynamicQuantizeLSTM",
    }
)
LARGE_MODEL_BYTES = 1_800_000_000  # past this a protobuf cannot hold the weights inline
EVAL_LIMIT = 512  # samples used to check a result when the technique is not judged on fidelity


@dataclass(frozen=True)
class QNode:
    """A node whose quantization changes the model: its weight initializer and float inputs."""

    name: str
    op: str
    weight: str | None
    activations: tuple[str, ...]
    macs: int = 0
    params: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.name, "op": self.op, "macs": self.macs, "params": self.params}


@dataclass
class Prepared:
    """The float model a technique quantizes, and what was done to get it."""

    path: Path
    source: Path
    notes: list[str] = field(default_factory=list)
    from_gemm: list[str] = field(default_factory=list)  # MatMul nodes that were Gemm nodes
    per_channel_possible: bool = True  # False below opset 13, where DequantizeLinear has no axis


# -- quiet libraries ------------------------------------------------------------------------------


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """ONNX Runtime's quantizer prints and logs to the root logger; none of it is the user's concern.

    A NullHandler on the root logger keeps ``logging.warning`` from installing a console
    handler for good, and stdout is captured so the command line's JSON stays clean.
    """
    root = logging.getLogger()
    level, guard = root.level, logging.NullHandler()
    root.addHandler(guard)
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.removeHandler(guard)
        root.setLevel(level)


@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    """Run ONNX Runtime's quantization tools in a private folder, removed afterwards.

    They write scratch files where they please: the symbolic shape inference of pre-processing
    saves ``sym_shape_infer_temp.onnx`` and a ``<uuid>.data`` beside it into the current directory
    when it gives up, and the quantizers make folders through ``tempfile``. Both the current
    directory and ``tempfile``'s default folder point into one private folder for the call, so
    nothing is left in the user's directory or in the system's temporary folder. Paths given to
    the tools must be absolute.
    """
    folder = Path(tempfile.mkdtemp(prefix="studio-quantize-")).resolve()
    try:
        cwd: str | None = os.getcwd()
    except FileNotFoundError:  # the user's directory was removed; there is nothing to return to
        cwd = None
    default_temp = tempfile.tempdir
    os.chdir(folder)
    tempfile.tempdir = str(folder)
    try:
        with quiet():
            yield folder
    finally:
        tempfile.tempdir = default_temp
        if cwd is not None:
            os.chdir(cwd)
        shutil.rmtree(folder, ignore_errors=True)


# -- reading the float model ----------------------------------------------------------------------


def load_graph(ctx: Context) -> onnx.ModelProto:
    """The input model's ONNX graph without its weights' bytes: enough for the cheap checks."""
    import onnx

    return onnx.load(str(ctx.model.onnx_path()), load_external_data=False)


def check_float_model(model: onnx.ModelProto, technique: str) -> None:
    """Refuse a model that is already quantized or already half precision, before any work."""
    import onnx

    found = sorted({n.op_type for n in model.graph.node} & QUANTIZED_OPS)
    if found:
        raise ParameterError(
            f"{technique} needs a float model, but this one is already quantized ({found[0]} nodes); "
            "start from its float parent"
        )
    half = onnx.TensorProto.FLOAT16
    if any(t.data_type == half for t in model.graph.initializer):
        raise ParameterError(
            f"{technique} needs a float32 model, but this one has float16 weights; start from its float32 parent"
        )


def check_node_names(model: onnx.ModelProto, names: Iterable[str]) -> None:
    known = {n.name for n in model.graph.node}
    missing = [name for name in names if name not in known]
    if missing:
        raise ParameterError(
            f"the model has no node named '{missing[0]}'; use the names shown in the model's layer table"
        )


def initializer_names(model: onnx.ModelProto | onnx.GraphProto) -> set[str]:
    graph = getattr(model, "graph", model)
    return {t.name for t in graph.initializer}


def constant_outputs(model: onnx.ModelProto | onnx.GraphProto) -> set[str]:
    """Values made by Constant nodes: weights too, for exporters that write them so (``prepare``
    turns them into initializers before quantizing)."""
    graph = getattr(model, "graph", model)
    return {node.output[0] for node in graph.node if node.op_type == "Constant" and node.output}


def name_unnamed_nodes(model: onnx.ModelProto) -> None:
    """Exclusions and the sensitivity table refer to nodes by name, so every node needs one."""
    taken = {n.name for n in model.graph.node if n.name}
    for i, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{i}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)


def weighted_nodes(
    model: onnx.ModelProto, op_types: Iterable[str] = WEIGHTED_OPS, *, const_weight_only: bool = True
) -> list[QNode]:
    """The nodes of ``op_types`` that quantization would change, in graph order, with their MACs.

    A MatMul between two activations (attention scores) has no weight; static quantization
    still quantizes it, dynamic quantization does not (``const_weight_only``).
    """
    wanted, consts = set(op_types), initializer_names(model) | constant_outputs(model)
    shapes = tensor_shapes(model)
    nodes = []
    for node in model.graph.node:
        if node.op_type not in wanted:
            continue
        found = _weight_and_activations(node, consts)
        if found is None or (found[0] is None and const_weight_only):
            continue
        weight, activations = found
        params = math.prod(shapes.get(weight, ())) if weight is not None else 0
        nodes.append(QNode(node.name, node.op_type, weight, activations, node_macs(node, shapes), params))
    return nodes


def _weight_and_activations(
    node: onnx.NodeProto, consts: set[str]
) -> tuple[str | None, tuple[str, ...]] | None:
    inputs = list(node.input)
    if node.op_type == "Gather":
        return (inputs[0], ()) if inputs[0] in consts else None
    if node.op_type in CONV_OPS:
        return (inputs[1], (inputs[0],)) if len(inputs) > 1 and inputs[1] in consts else None
    if node.op_type in ("MatMul", "Gemm"):
        a, b = inputs[0], inputs[1]
        if b in consts and a not in consts:
            return b, (a,)
        if a not in consts and b not in consts:
            return None, (a, b)
        return None
    weights = [name for name in inputs if name in consts]
    activations = tuple(name for name in inputs[:1] if name and name not in consts)
    return (weights[0] if weights else None), activations


# -- compute ----------------------------------------------------------------------------------------


def tensor_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape that shape inference can tell; a symbolic dimension counts as 1, so
    that :func:`studio.api.node_macs` counts every node at batch 1."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # an exotic graph still gets what its own value_info says
        inferred = model
    graph = inferred.graph
    shapes: dict[str, tuple[int, ...]] = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        t = value.type.tensor_type
        if t.HasField("shape"):
            shapes[value.name] = tuple(d.dim_value if d.dim_value > 0 else 1 for d in t.shape.dim)
    for init in graph.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def conv_share(model: onnx.ModelProto) -> float:
    """Fraction of the weighted multiply-adds that are convolutions, on the graph's declared shapes
    (0 when nothing is counted).

    A symbolic height or width counts as 1 here, so this is no ground for a decision on a model
    with free spatial dimensions: choices go by ``_compute.conv_share``, which counts on a real input.
    """
    nodes = weighted_nodes(model, ("MatMul", "Gemm", *CONV_OPS), const_weight_only=False)
    total = sum(n.macs for n in nodes)
    return sum(n.macs for n in nodes if n.op in CONV_OPS) / total if total else 0.0


def fixed_batch(graph_of: Path | onnx.ModelProto, model: ModelHandle) -> int | None:
    """The batch size the ONNX file (or loaded graph) was exported with, or None when it takes any.

    Read from the file that is quantized rather than from the model's description, so that every
    run made here (calibration, probes) feeds batches this very graph accepts. Only inputs that
    take samples count (``TensorSpec.role``); a model with a state runs one sample at a time.
    """
    import onnx

    roles = {spec.name: spec.role for spec in model.inputs}
    if "state" in roles.values():
        return 1
    if isinstance(graph_of, onnx.ModelProto):
        graph = graph_of.graph
    else:
        graph = onnx.load(str(graph_of), load_external_data=False).graph
    weights = initializer_names(graph)
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        if value.name in weights or roles.get(value.name, "batch") != "batch":
            continue
        if dims and dims[0].dim_value > 0:
            return dims[0].dim_value
    return None


def with_fixed_inputs(model: ModelHandle, runs: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """Each run of samples completed with what the inputs that take no samples are fed."""
    fixed = model.fixed_inputs()
    return [{**run, **fixed} for run in runs] if fixed else runs


# -- preparing --------------------------------------------------------------------------------------


def prepare(ctx: Context, *, preprocess: bool, gemm_to_matmul: bool = False) -> Prepared:
    """A float copy of the input in scratch space: nodes named, and pre-processed when asked.

    Old exports are made fit first (see ``_legacy``): weights listed as inputs become plain
    weights, and the opset is raised to 13. Pre-processing (ONNX Runtime's ``quant_pre_process``:
    shape inference and graph optimisation) folds constant subgraphs, such as a transposed
    weight, into initializers the quantizer can see, and gives calibration the shapes it needs. A
    model it cannot handle is quantized as it is, with a note. Gemm nodes are split after it,
    since its optimiser fuses MatMul + Add back into Gemm.
    """
    import onnx

    from ._legacy import modernize

    source = ctx.model.onnx_path().resolve()
    folder = ctx.temp_dir().resolve()
    model = onnx.load(str(source))
    name_unnamed_nodes(model)
    modernized = modernize(model)
    path = save_model(model, folder / "float.onnx")
    notes = list(modernized.notes)
    if preprocess:
        target = folder / "preprocessed.onnx"
        problem = _preprocess(path, target, large=model.ByteSize() > LARGE_MODEL_BYTES)
        if problem is None:
            path = target
        else:
            notes.append(
                f"Pre-processing was skipped because it failed ({problem}); the model was quantized as it was."
            )
    if gemm_to_matmul:
        model = onnx.load(str(path))
        split = split_gemms(model)
        count = len(split)
        if split:
            path = save_model(model, folder / "split.onnx")
            notes.append(
                f"{count} Gemm node(s) were rewritten as MatMul + Add so that they could be quantized."
            )
    return Prepared(
        path,
        source,
        notes,
        from_gemm=split if gemm_to_matmul else [],
        per_channel_possible=modernized.per_channel_possible,
    )


def _preprocess(source: Path, target: Path, *, large: bool) -> str | None:
    from onnxruntime.quantization.shape_inference import quant_pre_process

    _load_symbolic_shape_inference()
    attempts = ({}, {"skip_symbolic_shape": True}, {"skip_symbolic_shape": True, "skip_optimization": True})
    problem = None
    for options in attempts:
        try:
            with workspace():
                quant_pre_process(str(source), str(target), save_as_external_data=large, **options)
            return None
        except Exception as exc:  # each fallback does less; the last failure is what we report
            problem = first_line(exc)[:200]
    return problem


def _load_symbolic_shape_inference() -> None:
    """Load ONNX Runtime's symbolic shape inference from its file, under its own module name.

    ``quant_pre_process`` imports it from the ``onnxruntime.tools`` package, whose ``__init__``
    imports torch whenever torch is installed, for an export helper the studio never uses: 2.2 of
    the 3 seconds the first pre-processing took in a fresh worker. Python does not run a
    package's ``__init__`` for a submodule already in ``sys.modules``.
    """
    import importlib.util
    import sys

    import onnxruntime

    name = "onnxruntime.tools.symbolic_shape_infer"
    if name in sys.modules or "onnxruntime.tools" in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(
        name, Path(onnxruntime.__file__).parent / "tools" / "symbolic_shape_infer.py"
    )
    if spec is None or spec.loader is None:  # laid out otherwise: the package import does it
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:  # the package import in quant_pre_process tries again, and its fallbacks follow
        del sys.modules[name]


def sort_nodes(graph: onnx.GraphProto) -> None:
    """Put the graph's nodes in an order where each runs after what it reads, as ONNX requires.

    Converters that add nodes (the float16 converter appends the casts of the graph's inputs at
    the end) leave a graph ONNX Runtime runs but the format forbids, and the studio refuses to
    record. Nodes keep their order where it is already right; a node that reads a value inside
    its subgraphs (an If branch) waits for that value too.
    """
    produced = {o: i for i, node in enumerate(graph.node) for o in node.output if o}
    needs = [
        {produced[name] for name in _reads(node) if name in produced and produced[name] != i}
        for i, node in enumerate(graph.node)
    ]
    done: set[int] = set()
    order: list[int] = []
    while len(order) < len(needs):
        ready = [i for i in range(len(needs)) if i not in done and needs[i] <= done]
        if not ready:
            return  # a cycle: leave it for the studio's check to name
        order.extend(ready)
        done.update(ready)
    if order != list(range(len(needs))):
        nodes = [graph.node[i] for i in order]
        del graph.node[:]
        graph.node.extend(nodes)


def _reads(node: onnx.NodeProto) -> set[str]:
    names = set(node.input)
    for attr in node.attribute:
        for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
            for inner in sub.node:
                names |= _reads(inner)
    return names


def save_model(model: onnx.ModelProto, path: Path) -> Path:
    import onnx

    large = model.ByteSize() > LARGE_MODEL_BYTES
    onnx.save_model(
        model, str(path), save_as_external_data=large, location=f"{path.name}.data" if large else None
    )
    return path


def split_gemms(model: onnx.ModelProto) -> list[str]:
    """Rewrite plain Gemm nodes (constant B, alpha = beta = 1, no transA) as MatMul + Add.

    ONNX Runtime's dynamic quantization covers MatMul but not Gemm, and a Linear layer on a 2-D
    input exports as Gemm. The MatMul keeps the Gemm's name so exclusions still find it.
    """
    from onnx import helper, numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    new_nodes, split = [], []
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        plain = (
            attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0 and not attrs.get("transA", 0)
        )
        if node.op_type != "Gemm" or not plain or node.input[1] not in inits:
            new_nodes.append(node)
            continue
        weight = node.input[1]
        if attrs.get("transB", 0):
            array = numpy_helper.to_array(inits[weight]).T.copy()
            weight = f"{weight}_transposed"
            model.graph.initializer.append(numpy_helper.from_array(array, weight))
        has_bias = len(node.input) > 2 and node.input[2]
        product = f"{node.output[0]}_matmul" if has_bias else node.output[0]
        new_nodes.append(helper.make_node("MatMul", [node.input[0], weight], [product], name=node.name))
        if has_bias:
            new_nodes.append(
                helper.make_node("Add", [product, node.input[2]], [node.output[0]], name=f"{node.name}_bias")
            )
        split.append(node.name)
    if split:
        del model.graph.node[:]
        model.graph.node.extend(new_nodes)
        _drop_unused_initializers(model)
    return split


def _drop_unused_initializers(model: onnx.ModelProto) -> None:
    """Remove weights no node reads, and any graph input of theirs, which nobody could feed."""
    used = {name for node in model.graph.node for name in node.input}
    used |= {o.name for o in model.graph.output}
    dropped = {t.name for t in model.graph.initializer if t.name not in used}
    keep = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    inputs = [i for i in model.graph.input if i.name not in dropped]
    del model.graph.input[:]
    model.graph.input.extend(inputs)


# -- after quantizing -------------------------------------------------------------------------------


def nothing_to_quantize(technique: str, ops: Iterable[str], model: onnx.ModelProto | None) -> ParameterError:
    """The refusal when no node could be quantized, saying where the weighted nodes are when they
    sit only inside If/Loop branches, which ONNX Runtime's quantizers do not reach."""
    kinds = "/".join(dict.fromkeys(ops))
    text = f"{technique} found no {kinds} node with constant weights in this model, so there is nothing to quantize"
    branched = 0 if model is None else _weighted_in_branches(model.graph, set(ops))
    if branched:
        text += (
            f": its {branched} such node(s) sit inside If/Loop branches, which ONNX Runtime's quantizers "
            "do not reach (quantize.fp16 converts them)"
        )
    return ParameterError(text)


def _weighted_in_branches(graph: onnx.GraphProto, ops: set[str]) -> int:
    count = 0
    for node in graph.node:
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                count += sum(n.op_type in ops for n in sub.node) + _weighted_in_branches(sub, ops)
    return count


def refuse_unchanged(
    technique: str, changed: bool, candidates: int, ops: Iterable[str], model: onnx.ModelProto | None = None
) -> None:
    """A result in which no node was quantized is the float model under a new name: refuse it.

    Handing it over would record an "int8" version that is not one, and any speed-up measured on
    it would be noise.
    """
    if changed:
        return
    kinds = "/".join(dict.fromkeys(ops))
    if not candidates:
        raise nothing_to_quantize(technique, ops, model)
    raise ParameterError(
        f"{technique} quantized none of the model's {candidates} {kinds} node(s), so the result would "
        "be the float model; check nodes_to_exclude"
    )


def file_size(path: Path) -> int:
    """Bytes of an ONNX file and the external-data files it names."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    locations = set()
    for t in model.graph.initializer:
        for entry in t.external_data:
            if entry.key == "location":
                locations.add(entry.value)
    return path.stat().st_size + sum((path.parent / loc).stat().st_size for loc in locations)


def quantized_nodes(candidates: Iterable[QNode], quantized_model: onnx.ModelProto) -> list[QNode]:
    """The candidates the quantizer changed.

    Dynamic (QOperator) quantization replaces a node by an integer one of another name; QDQ keeps
    the node and feeds its weight from DequantizeLinear; a quantized Gather reads an 8-bit table.
    A node kept in float may still read a dequantized activation (its producer was quantized), so
    what counts is its weight, or both operands of a product of two activations.
    """
    import onnx

    eight_bit = {onnx.TensorProto.UINT8, onnx.TensorProto.INT8}
    small = {t.name for t in quantized_model.graph.initializer if t.data_type in eight_bit}
    dequantized = {o for n in quantized_model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    kept = {(n.name, n.op_type): n for n in quantized_model.graph.node}
    changed = []
    for candidate in candidates:
        node = kept.get((candidate.name, candidate.op))
        if node is None:
            changed.append(candidate)
            continue
        if candidate.weight is not None:
            read = [node.input[0 if candidate.op == "Gather" else 1]]
        else:
            read = list(node.input[:2])
        if all(name in dequantized or name in small for name in read):
            changed.append(candidate)
    return changed


def evaluation_inputs(
    ctx: Context, limit: int | None = EVAL_LIMIT, *, whole: bool = False
) -> tuple[dict, np.ndarray | None] | None:
    """The first ``limit`` validation samples and their labels, or None without a dataset.

    ``whole``: every sample the step may see (its train and validation splits), for a step that
    calibrates on none of them.
    """
    import numpy as np

    splits = [ctx.dataset("validation")] + ([ctx.dataset("train")] if whole else [])
    splits = [s for s in splits if s is not None and len(s)]
    if not splits:
        return None
    feeds = {k: np.concatenate([s.feeds()[k] for s in splits]) for k in splits[0].feeds()}
    labels = None if any(s.labels is None for s in splits) else np.concatenate([s.labels for s in splits])
    n = len(next(iter(feeds.values())))
    n = n if limit is None else min(limit, n)
    return {k: v[:n] for k, v in feeds.items()}, None if labels is None else labels[:n]


def tuning_sample_count(ctx: Context, *, calibrates: bool) -> int:
    """How many samples a search judges its candidates on (see :func:`evaluation_inputs`)."""
    validation, train = ctx.dataset("validation"), ctx.dataset("train")
    count = len(validation) if validation is not None else 0
    return count if calibrates or train is None else count + len(train)


def compare(
    ctx: Context, outputs: np.ndarray, reference: np.ndarray, labels: np.ndarray | None
) -> dict[str, Any]:
    """Fidelity to the float model, and the accuracy change in points where there are labels."""
    scores: dict[str, Any] = {"fidelity": ctx.fidelity(outputs, reference)}
    if labels is not None:
        before = ctx.accuracy(reference, labels)["top1"] * 100
        after = ctx.accuracy(outputs, labels)["top1"] * 100
        scores["accuracy"] = {"float_top1": before, "top1": after, "drop_points": before - after}
    return scores


def check_result(
    ctx: Context, float_path: Path, result_path: Path, *, half_inputs: bool = False
) -> dict[str, Any] | None:
    """Scores of a result against the float model on the validation split, when there is one.

    ``half_inputs``: the result takes float16 where the float model takes float32.
    """
    found = evaluation_inputs(ctx)
    if found is None:
        return None
    feeds, labels = found
    reference = ctx.predict(float_path, feeds)
    if half_inputs:
        feeds = {k: v.astype("float16") if v.dtype == "float32" else v for k, v in feeds.items()}
    outputs = ctx.predict(result_path, feeds)
    return {"samples": len(reference), **compare(ctx, outputs, reference, labels)}


def fidelity_notes(scores: dict[str, Any] | None, *, floor: float = 0.99) -> list[str]:
    if scores is None:
        return ["No dataset was given, so the result was not compared with the float model; measure it."]
    fid = scores["fidelity"]
    notes = [
        f"On {scores['samples']} validation samples the minimum cosine to the float model is "
        f"{fid['cosine_min']:.4f} (mean {fid['cosine_mean']:.4f})."
    ]
    acc = scores.get("accuracy")
    if acc is not None:
        notes.append(
            f"Top-1 accuracy {acc['float_top1']:.2f} % → {acc['top1']:.2f} % ({0.0 - acc['drop_points']:+.2f} points)."
        )
    if fid["cosine_min"] < floor:
        notes.append(
            f"The minimum cosine is below {floor}: quantize.auto keeps the most sensitive layers in float "
            "until a tolerance you set holds."
        )
    return notes


def size_details(before: Path, after: Path) -> dict[str, Any]:
    b, a = file_size(before), file_size(after)
    return {"size_bytes_before": b, "size_bytes_after": a, "size_ratio": b / a if a else None}
