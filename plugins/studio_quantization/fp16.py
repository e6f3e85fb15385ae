"""Half-precision conversion: float16 weights and compute, float32 at the model's edges.

It halves the file and is what GPUs and TensorRT (whose networks take their precision from the
ONNX file) run fastest. On a CPU it is not faster: ONNX Runtime has few float16 kernels there.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from studio.api import Context, Params, StudioError, Technique, TechniqueResult, first_line

from . import _common as common

FP16_MAX = 65504.0
FP16_TINY = 5.96e-08


class Float16Params(Params):
    keep_io_types: bool = Field(
        True,
        description="Keep the model's inputs and outputs float32 (a Cast is added inside), so that the "
        "same data and code feed the converted model.",
    )
    op_block_list: list[str] = Field(
        default_factory=list,
        description="Operator types to keep in float32, in addition to those the converter always keeps "
        "(such as Range, TopK, NonMaxSuppression and Upsample).",
    )
    nodes_to_exclude: list[str] = Field(
        default_factory=list, description="Names of nodes to keep in float32 (as in the layer table)."
    )


class Float16Conversion(Technique):
    name = "quantize.fp16"
    title = "Half precision (FP16)"
    help = (
        "Converts weights and computation to float16: the file is half the size and GPUs run it "
        "faster. On a CPU it is not faster than float32. Values beyond float16's range are clamped."
    )
    accepts = ("onnx", "torch")
    produces = "onnx"
    dataset = "optional"
    Params: ClassVar[type[Params]] = Float16Params

    def check(self, params: Float16Params, ctx: Context) -> None:
        model = common.load_graph(ctx)
        common.check_float_model(model, self.name)
        common.check_node_names(model, params.nodes_to_exclude)

    def run(self, params: Float16Params, ctx: Context) -> TechniqueResult:
        ctx.progress(0.05, "loading the float model")
        source = ctx.model.onnx_path()
        model = ctx.model.load_onnx()
        clamped = out_of_range_weights(model)
        ctx.progress(0.3, "converting to float16")
        converted = convert(model, params)
        target = common.save_model(converted, ctx.temp_dir() / "fp16.onnx")
        check_loads(target)
        ctx.progress(0.7, "comparing with the float model")
        scores = common.check_result(ctx, source, target, half_inputs=not params.keep_io_types)
        details = {
            "keep_io_types": params.keep_io_types,
            "op_block_list": list(params.op_block_list),
            "nodes_excluded": list(params.nodes_to_exclude),
            "weights_clamped": clamped,
            **common.size_details(source, target),
            "scores": scores,
        }
        output = ctx.save_onnx(target)
        return TechniqueResult(output=output, details=details, notes=notes(clamped, scores), name="fp16")


def convert(model, params: Float16Params):
    try:
        from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16
    except ImportError:  # pragma: no cover - part of every onnxruntime wheel since 1.10
        raise StudioError("this ONNX Runtime has no float16 converter (onnxruntime.transformers)") from None
    from ._legacy import constants_to_initializers

    constants_to_initializers(model)  # the converter reaches weights only among initializers
    with common.quiet():
        converted = convert_float_to_float16(
            model,
            keep_io_types=params.keep_io_types,
            op_block_list=sorted({*DEFAULT_OP_BLOCK_LIST, *params.op_block_list}),
            node_block_list=list(params.nodes_to_exclude) or None,
            disable_shape_infer=model.ByteSize() > common.LARGE_MODEL_BYTES,
        )
    common.sort_nodes(converted.graph)  # the converter appends the input casts after their readers
    return converted


def out_of_range_weights(model) -> int:
    """Float32 weight values that float16 cannot hold: larger than its maximum, or non-zero below its tiniest."""
    import numpy as np
    from onnx import TensorProto, numpy_helper

    count = 0
    for tensor in model.graph.initializer:
        if tensor.data_type != TensorProto.FLOAT:
            continue
        values = np.abs(numpy_helper.to_array(tensor))
        count += int(
            np.count_nonzero(values > FP16_MAX) + np.count_nonzero((values > 0) & (values < FP16_TINY))
        )
    return count


def check_loads(path: Path) -> None:
    """A converted graph with mismatched types fails only when opened; say so instead of handing it over."""
    import onnxruntime as ort

    try:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        first = first_line(exc)[:200]
        raise StudioError(
            f"the float16 model does not load in ONNX Runtime ({first}); keep the failing operator in float32 "
            "with op_block_list"
        ) from None


def notes(clamped: int, scores: dict | None) -> list[str]:
    out = [
        "Float16 halves the file. On a CPU it is no faster than float32 (ONNX Runtime has few float16 CPU "
        "kernels); the speed-up comes on GPUs and with TensorRT.",
    ]
    if clamped:
        out.append(f"{clamped} weight value(s) lie outside float16's range and were clamped.")
    return out + common.fidelity_notes(scores, floor=0.999)
