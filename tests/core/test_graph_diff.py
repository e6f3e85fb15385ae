"""The graph diff on real models: a small CNN exported to ONNX, then pruned (same names, fewer
channels), quantized dynamically, statically (QDQ) and converted to float16 by the same tools the
studio's techniques use."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from studio.core.graph_diff import ADDED, PRECISION, REMOVED, SHAPE, UNCHANGED, GraphDiff, diff_models
from studio.core.models import export_onnx

INPUT = (1, 1, 16, 16)


def _cnn(width: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(1, width, 3, padding=1),
            relu1=nn.ReLU(),
            conv2=nn.Conv2d(width, 2 * width, 3, padding=1),
            relu2=nn.ReLU(),
            pool=nn.AdaptiveAvgPool2d(1),
            flat=nn.Flatten(),
            fc=nn.Linear(2 * width, 10),
        )
    ).eval()


class _Calibration:
    """What quantize_static reads: a few input batches, then None."""

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self._batches = iter([{"x": rng.random(INPUT, dtype=np.float32)} for _ in range(4)])

    def get_next(self):
        return next(self._batches, None)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import onnx
    from onnxruntime.quantization import QuantFormat, quantize_dynamic, quantize_static
    from onnxruntime.transformers.float16 import convert_float_to_float16

    folder = tmp_path_factory.mktemp("graph-diff")
    made = {}
    for name, width in (("base", 32), ("pruned", 16)):
        made[name] = export_onnx(
            _cnn(width), (torch.randn(INPUT),), folder / f"{name}.onnx", input_names=["x"]
        )
    made["dynamic"] = folder / "dynamic.onnx"
    quantize_dynamic(made["base"], made["dynamic"])
    for source in ("base", "pruned"):
        made[f"static-{source}"] = folder / f"static-{source}.onnx"
        quantize_static(made[source], made[f"static-{source}"], _Calibration(), quant_format=QuantFormat.QDQ)
    made["fp16"] = folder / "fp16.onnx"
    onnx.save(convert_float_to_float16(onnx.load(made["base"]), keep_io_types=True), made["fp16"])
    return made


def _by_name(diff: GraphDiff) -> dict[str, object]:
    return {node.name: node for node in diff.nodes}


def test_a_pruned_copy_keeps_its_names_and_reports_channels(models):
    diff = diff_models(models["base"], models["pruned"])
    nodes = _by_name(diff)
    assert diff.counts()[ADDED] == diff.counts()[REMOVED] == 0
    conv1 = nodes["/conv1/Conv"]
    assert conv1.status == SHAPE
    assert conv1.changes == ("channels 32 → 16",)  # its one input channel stays
    assert nodes["/conv2/Conv"].changes == ("channels 64 → 32", "inputs 32 → 16")
    assert nodes["/fc/Gemm"].changes == ("weights 10×64 → 10×32",)  # same output, fewer inputs
    assert nodes["/relu1/Relu"].status == SHAPE  # its output has fewer channels too
    assert diff.statuses()["/conv1/Conv"] == SHAPE


def test_dynamic_quantization_is_matched_back_to_the_float_ops(models):
    diff = diff_models(models["base"], models["dynamic"])
    counts = diff.counts()
    assert counts[SHAPE] == counts[REMOVED] == 0, diff.differences()
    integer = {n.before: n for n in diff.nodes if n.op_after in ("ConvInteger", "MatMulInteger")}
    assert set(integer) == {"/conv1/Conv", "/conv2/Conv", "/fc/Gemm"}
    assert integer["/conv1/Conv"].name == "/conv1/Conv_quant"
    assert integer["/fc/Gemm"].op_before == "Gemm"  # rewritten as MatMul, its weight transposed
    assert all(n.status == PRECISION and n.changes == ("FP32 → INT8",) for n in integer.values())
    added = [n for n in diff.nodes if n.status == ADDED]
    assert {"DynamicQuantizeLinear", "Mul"} <= {n.op_after for n in added}
    assert _by_name(diff)["/relu1/Relu"].status == UNCHANGED  # still computed in float


def test_static_qdq_quantization_marks_wrapped_ops_int8(models):
    diff = diff_models(models["base"], models["static-base"])
    nodes = _by_name(diff)
    for conv in ("/conv1/Conv", "/conv2/Conv", "/fc/Gemm"):
        assert nodes[conv].status == PRECISION and nodes[conv].changes == ("FP32 → INT8",)
    added = {n.op_after for n in diff.nodes if n.status == ADDED}
    assert added == {"QuantizeLinear", "DequantizeLinear"}
    removed = [n for n in diff.nodes if n.status == REMOVED]
    assert {n.op_before for n in removed} <= {"Relu"}  # folded into the quantization that follows
    assert all(n.name not in diff.statuses() for n in removed)  # not drawn in the newer graph


def test_pruned_then_quantized_reports_both(models):
    conv = _by_name(diff_models(models["base"], models["static-pruned"]))["/conv1/Conv"]
    assert conv.status == SHAPE
    assert {"channels 32 → 16", "FP32 → INT8"} <= set(conv.changes)


def test_float16_conversion_changes_precision_only(models):
    diff = diff_models(models["base"], models["fp16"])
    nodes = _by_name(diff)
    assert nodes["/conv1/Conv"].changes == ("FP32 → FP16",)
    assert all(n.status in (PRECISION, ADDED) for n in diff.nodes)
    assert {n.op_after for n in diff.nodes if n.status == ADDED} == {"Cast"}  # at the model's edges


def test_a_model_against_itself_is_unchanged(models):
    diff = diff_models(models["static-base"], models["static-base"])
    assert diff.differences() == []
    assert diff.counts()[UNCHANGED] == len(diff.nodes) > 0
