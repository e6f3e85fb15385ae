"""quantize.fp16: half the file, the same answers, float32 at the edges unless asked otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto
from quant_helpers import onnx_outputs, top1, validation

from studio.api import ParameterError
from studio.core.models import onnx_graph_problem
from studio.core.techniques import run_local


def _weight_types(path: Path, op: str) -> set[int]:
    model = onnx.load(str(path))
    inits = {t.name: t.data_type for t in model.graph.initializer}
    return {
        inits[name] for n in model.graph.node if n.op_type == op for name in n.input[1:2] if name in inits
    }


def test_digits_cnn_in_half_precision(digits_onnx: Path, digits, tmp_path: Path) -> None:
    result = run_local("quantize.fp16", digits_onnx, dataset=digits, output_dir=tmp_path / "out")

    model = onnx.load(str(result.output.main))
    assert onnx_graph_problem(model) is None  # nodes in order: the studio records it as it is
    onnx.checker.check_model(model)
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert _weight_types(result.output.main, "Conv") == {TensorProto.FLOAT16}
    assert 1.9 < result.details["size_ratio"] < 2.1
    assert result.output.main.stat().st_size < 0.55 * digits_onnx.stat().st_size
    x, labels = validation(digits)
    reference, half = onnx_outputs(digits_onnx, x), onnx_outputs(result.output.main, x)
    cosine = (reference * half).sum(1) / (np.linalg.norm(reference, axis=1) * np.linalg.norm(half, axis=1))
    assert cosine.min() > 0.9999
    assert result.details["scores"]["fidelity"]["cosine_min"] == pytest.approx(cosine.min(), abs=1e-6)
    assert (top1(reference, labels) - top1(half, labels)) * 100 == pytest.approx(0.0, abs=0.3)
    assert any("no faster" in note for note in result.notes)


def test_float16_inputs_and_blocked_ops(digits_onnx: Path, digits, tmp_path: Path) -> None:
    result = run_local(
        "quantize.fp16",
        digits_onnx,
        dataset=digits,
        params={"keep_io_types": False, "op_block_list": ["Gemm"]},
        output_dir=tmp_path / "out",
    )
    model = onnx.load(str(result.output.main))
    assert onnx_graph_problem(model) is None  # nodes in order: the studio records it as it is
    onnx.checker.check_model(model)
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT16
    assert _weight_types(result.output.main, "Gemm") == {TensorProto.FLOAT}
    assert result.details["scores"]["fidelity"]["cosine_min"] > 0.999


def test_a_half_precision_model_is_refused(digits_onnx: Path, tmp_path: Path) -> None:
    first = run_local("quantize.fp16", digits_onnx, output_dir=tmp_path / "first")
    with pytest.raises(ParameterError, match="float16 weights"):
        run_local("quantize.fp16", first.output.main, output_dir=tmp_path / "second")
    with pytest.raises(ParameterError, match="float16 weights"):
        run_local("quantize.dynamic", first.output.main, output_dir=tmp_path / "third")


def test_unknown_node_is_refused(digits_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="no node named"):
        run_local("quantize.fp16", digits_onnx, params={"nodes_to_exclude": ["x"]}, output_dir=tmp_path / "o")
