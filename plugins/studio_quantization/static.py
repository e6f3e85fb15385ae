"""Static INT8 quantization (QDQ): weights and activations 8-bit, activation ranges calibrated.

Activation ranges are measured once on calibration samples instead of at every run, so every
quantized operator, convolutions included, runs on integer kernels. It is the technique for
convolutional networks on CPU, and usually the fastest INT8 for transformers too when their
activations have no large outliers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from studio.api import Context, ParameterError, Params, Technique, TechniqueResult

from . import _common as common

if TYPE_CHECKING:
    import numpy as np

MIN_CALIBRATION = 16
CALIBRATION_BATCH = 8
BIAS_CHECK = "_adjust_weight_scale_for_int32_bias"  # ONNX Runtime's function that fails on 2-D biases


class StaticParams(Params):
    calibration_method: Literal["minmax", "entropy", "percentile"] = Field(
        "minmax",
        description="How activation ranges are chosen from the calibration samples. minmax kept the "
        "digits CNN at its float accuracy and calibrates fastest; entropy and percentile clip "
        "rare outliers and can help models with long-tailed activations.",
    )
    calibration_samples: int = Field(
        128,
        ge=MIN_CALIBRATION,
        le=4096,
        description="Calibration samples to read (at most what the calibration split holds).",
    )
    percentile: float = Field(
        99.999, ge=90.0, le=100.0, description="Percentile of |activation| kept, for the percentile method."
    )
    per_channel: bool = Field(
        True,
        description="One weight scale per output channel: more faithful for convolutions at no measurable "
        "speed cost on the digits CNN.",
    )
    activation_type: Literal["uint8", "int8"] = Field(
        "uint8",
        description="Activation type. uint8 activations with int8 weights are the combination ONNX Runtime "
        "recommends for x86 CPUs with VNNI.",
    )
    weight_type: Literal["int8", "uint8"] = Field("int8", description="Weight type; int8 for x86 CPUs.")
    reduce_range: bool = Field(
        True,
        description="Quantize weights to 7 bits. x86 CPUs without VNNI (AVX2 only) add uint8 × int8 "
        "products in 16 bits, which saturate with full 8-bit weights: on such a CPU the digits CNN fell "
        "from 99.4 % to 64 % top-1 without it and kept 99.4 % with it. The file then runs correctly on "
        "every CPU; turn it off only for CPUs with VNNI.",
    )
    quant_format: Literal["qdq", "qoperator"] = Field(
        "qdq",
        description="qdq inserts QuantizeLinear/DequantizeLinear pairs that the runtime fuses into integer "
        "kernels (preferred by ONNX Runtime and TensorRT); qoperator writes QLinear* operators.",
    )
    nodes_to_exclude: list[str] = Field(
        default_factory=list, description="Names of nodes to keep in float (as in the layer table)."
    )
    preprocess: bool = Field(
        True, description="Run ONNX Runtime's pre-processing (shape inference, graph optimisation) first."
    )


class StaticQuantization(Technique):
    name = "quantize.static"
    title = "Static INT8 quantization"
    help = (
        "Quantizes weights and activations to 8 bits, with activation ranges calibrated on samples "
        "of your dataset (its calibration split, at least 16 samples). About 4× smaller and 1.5–3.5× "
        "faster on CPU, convolutions included. Check the accuracy it reports."
    )
    accepts = ("onnx", "torch")
    produces = "onnx"
    dataset = "inputs"
    Params: ClassVar[type[Params]] = StaticParams

    def check(self, params: StaticParams, ctx: Context) -> None:
        model = common.load_graph(ctx)
        common.check_float_model(model, self.name)
        common.check_node_names(model, params.nodes_to_exclude)
        check_calibration(ctx, self.name)

    def run(self, params: StaticParams, ctx: Context) -> TechniqueResult:
        ctx.progress(0.05, "preparing the float model")
        prepared = common.prepare(ctx, preprocess=params.preprocess)
        target = ctx.temp_dir().resolve() / "static.onnx"
        feeds = calibration_feeds(ctx, params.calibration_samples)
        reader = CalibrationReader(
            feeds,
            batch_size(prepared.path, ctx),
            lambda f: ctx.progress(0.1 + 0.6 * f, "calibrating"),
            fixed=ctx.model.fixed_inputs(),
        )
        wanted = params.per_channel and prepared.per_channel_possible
        per_channel = quantize(prepared.path, target, params, reader, per_channel=wanted)
        done, candidates = quantized(prepared, target)
        common.refuse_unchanged(
            self.name, bool(done), len(candidates), common.WEIGHTED_OPS, ctx.model.load_onnx()
        )
        ctx.progress(0.75, "comparing with the float model")
        scores = common.check_result(ctx, prepared.source, target)
        details, notes = describe(
            prepared, target, params, Outcome(len(reader), per_channel, done, candidates), scores
        )
        output = ctx.save_onnx(target)
        return TechniqueResult(output=output, details=details, notes=notes, name="int8-static")


def check_calibration(ctx: Context, technique: str) -> None:
    split = ctx.dataset("calibration")  # a dataset that does not fit the inputs is refused here
    if split is None:
        raise ParameterError(f"{technique} needs a dataset to calibrate on: pass --data")
    if len(split) < MIN_CALIBRATION:
        raise ParameterError(
            f"the calibration split has {len(split)} samples; static quantization needs at least "
            f"{MIN_CALIBRATION} to estimate activation ranges"
        )


def calibration_feeds(ctx: Context, limit: int) -> dict[str, np.ndarray]:
    split = ctx.dataset("calibration")
    assert split is not None  # check_calibration ran first
    return {k: v[:limit] for k, v in split.feeds().items()}


def batch_size(model: Path, ctx: Context) -> int:
    """The model's fixed batch when it has one (a graph exported for batch 1 takes nothing
    else), else a few samples per calibration run."""
    return common.fixed_batch(model, ctx.model) or CALIBRATION_BATCH


class CalibrationReader:
    """Feeds calibration batches to ONNX Runtime's calibrator and reports progress as it reads.

    ONNX Runtime accepts any object with ``get_next``; a cancel raised from the progress
    callback stops the calibration where it is.
    """

    def __init__(
        self,
        feeds: dict[str, np.ndarray],
        batch: int,
        progress: Callable[[float], None],
        *,
        fixed: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.feeds, self.batch, self.progress = feeds, batch, progress
        self.fixed = fixed or {}  # inputs that take no samples: a state, a sample rate
        self.n = len(next(iter(feeds.values())))
        self.start = 0

    def __len__(self) -> int:
        return self.n

    def get_next(self) -> dict[str, np.ndarray] | None:
        import numpy as np

        if self.start >= self.n:
            return None
        self.progress(self.start / self.n)
        idx = np.arange(self.start, self.start + self.batch) % self.n  # a fixed batch is filled up
        self.start += self.batch
        return {**{k: v[idx] for k, v in self.feeds.items()}, **self.fixed}

    def rewind(self) -> None:
        self.start = 0


def quantize(
    source: Path,
    target: Path,
    params: StaticParams,
    reader: CalibrationReader | None,
    *,
    exclude: list[str] | None = None,
    cache: Path | None = None,
    per_channel: bool | None = None,
) -> bool:
    """quantize_static with the studio's choices; returns whether the weights got per-channel scales.

    ``per_channel`` overrides the parameter (the caller knows when the opset cannot have them);
    a ``cache`` file reuses ranges already calibrated. ONNX Runtime's check that a bias still fits
    int32 (``_adjust_weight_scale_for_int32_bias``) fails per channel on a bias that is not 1-D,
    such as a Gemm's ``C`` of shape [1, N] from older exporters: then the model is quantized again
    with one scale per tensor, from the first calibration sample on.
    """
    per_channel = params.per_channel if per_channel is None else per_channel
    try:
        _quantize_static(source, target, params, reader, exclude, cache, per_channel)
    except ValueError as exc:
        if not per_channel or not _raised_in(exc, BIAS_CHECK):
            raise
    else:
        return per_channel
    if reader is not None:
        reader.rewind()
    _quantize_static(source, target, params, reader, exclude, cache, False)
    return False


def _raised_in(exc: BaseException, function: str) -> bool:
    import traceback

    return any(frame.name == function for frame in traceback.extract_tb(exc.__traceback__))


def _quantize_static(
    source: Path,
    target: Path,
    params: StaticParams,
    reader: CalibrationReader | None,
    exclude: list[str] | None,
    cache: Path | None,
    per_channel: bool,
) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    types = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}
    method = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[params.calibration_method]
    extra: dict[str, Any] = {}
    if params.calibration_method == "percentile":
        extra["CalibPercentile"] = params.percentile
    with common.workspace():
        quantize_static(
            str(source),
            str(target),
            reader,
            quant_format=QuantFormat.QDQ if params.quant_format == "qdq" else QuantFormat.QOperator,
            per_channel=per_channel,
            activation_type=types[params.activation_type],
            weight_type=types[params.weight_type],
            reduce_range=params.reduce_range,
            nodes_to_exclude=[*params.nodes_to_exclude, *(exclude or [])],
            calibrate_method=method,
            extra_options=extra,
            calibration_cache_path=None if cache is None else str(cache),
        )


def quantized(prepared: common.Prepared, target: Path) -> tuple[list[common.QNode], list[common.QNode]]:
    """The weighted nodes the result quantized, and all weighted nodes of the float model."""
    import onnx

    float_model = onnx.load(str(prepared.path), load_external_data=False)
    candidates = common.weighted_nodes(float_model, const_weight_only=False)
    return common.quantized_nodes(candidates, onnx.load(str(target), load_external_data=False)), candidates


def per_tensor_notes(asked: bool, used: bool, prepared: common.Prepared) -> list[str]:
    """Why weights got one scale per tensor when per-channel scales were asked for."""
    if not asked or used:
        return []
    if not prepared.per_channel_possible:
        return ["Per-channel scales need opset 13, so each weight got one scale per tensor."]
    return [
        "ONNX Runtime could not fit per-channel weight scales to this model's biases (a bias that is not "
        "one-dimensional), so each weight got one scale per tensor."
    ]


@dataclass(frozen=True)
class Outcome:
    """What one quantization did: samples calibrated on, the scales used, the nodes changed."""

    samples: int
    per_channel: bool
    done: list[common.QNode]
    candidates: list[common.QNode]


def describe(
    prepared: common.Prepared, target: Path, params: StaticParams, outcome: Outcome, scores: dict | None
) -> tuple[dict, list[str]]:
    done, candidates = outcome.done, outcome.candidates
    details = {
        "calibration_samples": outcome.samples,
        "calibration_method": params.calibration_method,
        "per_channel": outcome.per_channel,
        "activation_type": params.activation_type,
        "weight_type": params.weight_type,
        "reduce_range": params.reduce_range,
        "quant_format": params.quant_format,
        "nodes_quantized": [n.to_dict() for n in done],
        "nodes_excluded": list(params.nodes_to_exclude),
        **common.size_details(prepared.source, target),
        "scores": scores,
    }
    notes = [
        *prepared.notes,
        *per_tensor_notes(params.per_channel, outcome.per_channel, prepared),
        f"Calibrated on {outcome.samples} samples ({params.calibration_method}); "
        f"{len(done)} of {len(candidates)} weighted node(s) were quantized.",
    ]
    return details, notes + common.fidelity_notes(scores)
