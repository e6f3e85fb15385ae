"""Dynamic INT8 quantization: weights stored as 8-bit integers, activations quantized on the fly.

It needs no calibration data and suits models whose compute is in matrix products
(transformers, MLPs, LSTMs). Convolutions are left out by default: ONNX Runtime runs a
dynamically quantized convolution as ConvInteger, which made a CNN 7.6x slower on CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from studio.api import Context, Params, Technique, TechniqueResult

from . import _common as common
from ._compute import ComputeShare, conv_share

DynamicOp = Literal["MatMul", "Gemm", "Gather", "Attention", "LSTM", "EmbedLayerNormalization", "Conv"]
DEFAULT_OPS: tuple[DynamicOp, ...] = (
    "MatMul",
    "Gemm",
    "Gather",
    "Attention",
    "LSTM",
    "EmbedLayerNormalization",
)
CONV_WARNING_SHARE = 0.5


class DynamicParams(Params):
    weight_type: Literal["int8", "uint8"] = Field(
        "int8",
        description="Integer type of the weights. int8 uses the u8×s8 kernels of AVX-512 VNNI CPUs; "
        "uint8 weights ran 1.4× slower on all-MiniLM-L6-v2.",
    )
    per_channel: bool = Field(
        True,
        description="One scale per output channel instead of one per tensor. On all-MiniLM-L6-v2 it lifted "
        "the minimum cosine to the float model from 0.94 to 0.988 at the same speed.",
    )
    op_types: list[DynamicOp] = Field(
        list(DEFAULT_OPS),
        min_length=1,
        description="Operators to quantize. Gemm is rewritten as MatMul + Add first; Gather quantizes "
        "embedding tables (most of a small transformer's file). Conv is left out: dynamic "
        "convolutions are usually slower than float on CPU — use quantize.static for CNNs.",
    )
    nodes_to_exclude: list[str] = Field(
        default_factory=list, description="Names of nodes to keep in float (as in the layer table)."
    )
    reduce_range: bool = Field(
        False,
        description="Quantize weights to 7 bits. Only helps CPUs without VNNI, where 8-bit products can "
        "saturate; it costs accuracy elsewhere.",
    )
    preprocess: bool = Field(
        True,
        description="Run ONNX Runtime's pre-processing (shape inference, graph optimisation) first, so that "
        "folded constants such as transposed weights can be quantized.",
    )


class DynamicQuantization(Technique):
    name = "quantize.dynamic"
    title = "Dynamic INT8 quantization"
    help = (
        "Stores the weights of matrix products and embeddings as 8-bit integers and quantizes "
        "activations at run time. No calibration data is needed. About 4× smaller and 2–3× faster "
        "on CPU for transformers; for convolutional networks use static quantization instead. "
        "Give a dataset to have the result compared with the float model."
    )
    accepts = ("onnx", "torch")
    produces = "onnx"
    dataset = "optional"
    Params: ClassVar[type[Params]] = DynamicParams

    def check(self, params: DynamicParams, ctx: Context) -> None:
        model = common.load_graph(ctx)
        common.check_float_model(model, self.name)
        common.check_node_names(model, params.nodes_to_exclude)
        candidates = common.weighted_nodes(model, params.op_types)
        if not candidates and not _has_other_ops(model, params.op_types):
            raise common.nothing_to_quantize(self.name, params.op_types, model)

    def run(self, params: DynamicParams, ctx: Context) -> TechniqueResult:
        ctx.progress(0.05, "preparing the float model")
        prepared = common.prepare(ctx, preprocess=params.preprocess, gemm_to_matmul="Gemm" in params.op_types)
        ctx.progress(0.35, "quantizing")
        target = ctx.temp_dir().resolve() / "dynamic.onnx"
        per_channel = params.per_channel and prepared.per_channel_possible
        used = params.model_copy(update={"per_channel": per_channel})
        quantize(prepared.path, target, used, exclude=plain_matmuls_left_out(prepared, params))
        done, candidates = quantized(prepared, target, params)
        common.refuse_unchanged(
            self.name, bool(done) or _fused_quantized(target), len(candidates), params.op_types
        )
        ctx.progress(0.7, "comparing with the float model")
        scores = common.check_result(ctx, prepared.source, target)
        details, notes = describe(prepared, target, used, scores, done, conv_share(ctx))
        if params.per_channel and not per_channel:
            notes.insert(
                len(prepared.notes),
                "Per-channel scales need opset 13, so each weight got one scale per tensor.",
            )
        output = ctx.save_onnx(target)
        return TechniqueResult(output=output, details=details, notes=notes, name="int8-dynamic")


def quantize(source: Path, target: Path, params: DynamicParams, *, exclude: list[str] | None = None) -> None:
    """quantize_dynamic with the studio's choices; ``exclude`` adds nodes to the user's exclusions."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    ops = list(dict.fromkeys("MatMul" if op == "Gemm" else op for op in params.op_types))
    with common.workspace():
        quantize_dynamic(
            str(source),
            str(target),
            op_types_to_quantize=ops,
            per_channel=params.per_channel,
            reduce_range=params.reduce_range,
            weight_type=QuantType.QInt8 if params.weight_type == "int8" else QuantType.QUInt8,
            nodes_to_exclude=[*params.nodes_to_exclude, *(exclude or [])],
            extra_options={"MatMulConstBOnly": True},
        )


def plain_matmuls_left_out(prepared: common.Prepared, params: DynamicParams) -> list[str]:
    """Gemm nodes are quantized as MatMul; when MatMul itself was not chosen, the real ones stay float."""
    import onnx

    if "MatMul" in params.op_types:
        return []
    model = onnx.load(str(prepared.path), load_external_data=False)
    rewritten = set(prepared.from_gemm)
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and n.name not in rewritten]


def quantized(
    prepared: common.Prepared, target: Path, params: DynamicParams
) -> tuple[list[common.QNode], list[common.QNode]]:
    """The nodes the result quantized, and the nodes of the chosen kinds it could have."""
    import onnx

    float_model = onnx.load(str(prepared.path), load_external_data=False)
    ops = set(params.op_types) | {"MatMul"}
    left_out = set(params.nodes_to_exclude) | set(plain_matmuls_left_out(prepared, params))
    candidates = [n for n in common.weighted_nodes(float_model, ops) if n.name not in left_out]
    return common.quantized_nodes(candidates, onnx.load(str(target), load_external_data=False)), candidates


def describe(
    prepared: common.Prepared,
    target: Path,
    params: DynamicParams,
    scores: dict | None,
    done: list[common.QNode],
    compute: ComputeShare,
) -> tuple[dict, list[str]]:
    share = compute.conv
    details = {
        "weight_type": params.weight_type,
        "per_channel": params.per_channel,
        "op_types": list(params.op_types),
        "nodes_quantized": [n.to_dict() for n in done],
        "nodes_excluded": list(params.nodes_to_exclude),
        "conv_mac_share": share if compute.counted == "macs" else None,
        "compute": compute.to_dict(),
        **common.size_details(prepared.source, target),
        "scores": scores,
    }
    notes = [*prepared.notes, f"{len(done)} node(s) were quantized to 8 bits."]
    if "Conv" in params.op_types or share > CONV_WARNING_SHARE:
        phrase = compute.conv_phrase()
        notes.append(
            f"In this model {phrase}. Dynamic quantization of convolutions (ConvInteger) is usually slower "
            "than float on CPU; quantize.static is the technique for convolutional networks."
        )
    return details, notes + common.fidelity_notes(scores)


def _fused_quantized(path: Path) -> bool:
    """LSTM and attention nodes carry their weights inside, so they are not among the weighted
    nodes; their quantized forms show that the result changed."""
    import onnx

    fused = {"DynamicQuantizeLSTM", "QAttention", "QEmbedLayerNormalization"}
    return any(n.op_type in fused for n in onnx.load(str(path), load_external_data=False).graph.node)


def _has_other_ops(model, op_types) -> bool:
    """Attention, LSTM and EmbedLayerNormalization carry their weights inside; their presence is enough."""
    fused = {"Attention", "LSTM", "EmbedLayerNormalization"} & set(op_types)
    return any(n.op_type in fused for n in model.graph.node)
