"""quantize.dynamic on real exported models: what it quantizes, what it leaves, what it refuses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from quant_helpers import cancel_after, onnx_ops, onnx_outputs, validation

from studio.api import Cancelled, ParameterError
from studio.core.techniques import run_local


def test_encoder_matmuls_and_embeddings_become_int8(encoder_onnx: Path, tokens, tmp_path: Path) -> None:
    result = run_local("quantize.dynamic", encoder_onnx, dataset=tokens, output_dir=tmp_path / "out")

    ops = onnx_ops(result.output.main)
    assert "MatMulInteger" in ops and "DynamicQuantizeLinear" in ops
    quantized = {row["node"] for row in result.details["nodes_quantized"]}
    # 2 layers x (Q, K, V, attention output, FFN in, FFN out) + word and position embeddings
    assert len(quantized) == 14
    assert any("word_embeddings" in name for name in quantized)
    assert result.details["size_ratio"] > 3.0
    fidelity = result.details["scores"]["fidelity"]
    assert 0.9 < fidelity["cosine_min"] <= 1.0
    assert result.details["per_channel"] is True
    assert any("minimum cosine" in note for note in result.notes)


def test_gemm_layers_are_rewritten_and_quantized(mlp_onnx: Path, mlp_data, tmp_path: Path) -> None:
    assert "Gemm" in onnx_ops(mlp_onnx)
    result = run_local("quantize.dynamic", mlp_onnx, dataset=mlp_data, output_dir=tmp_path / "out")

    assert len(result.details["nodes_quantized"]) == 3
    assert "Gemm" not in onnx_ops(result.output.main)
    assert any("Gemm" in note and "MatMul" in note for note in result.notes)
    assert result.details["scores"]["accuracy"]["drop_points"] < 5.0


def test_choosing_gemm_alone_leaves_real_matmuls_float(
    encoder_onnx: Path, mlp_onnx: Path, tmp_path: Path
) -> None:
    with pytest.raises(ParameterError, match="no Gemm node"):
        run_local("quantize.dynamic", encoder_onnx, params={"op_types": ["Gemm"]}, output_dir=tmp_path / "a")
    result = run_local(
        "quantize.dynamic", encoder_onnx, params={"op_types": ["Gather"]}, output_dir=tmp_path / "b"
    )
    assert {row["op"] for row in result.details["nodes_quantized"]} == {"Gather"}
    assert "MatMulInteger" not in onnx_ops(result.output.main)


def test_rewritten_gemm_computes_the_same(mlp_onnx: Path) -> None:
    from studio_quantization._common import split_gemms

    model = onnx.load(str(mlp_onnx))
    assert len(split_gemms(model)) == 3
    x = np.random.default_rng(1).standard_normal((5, 16)).astype(np.float32)
    before = ort.InferenceSession(str(mlp_onnx)).run(None, {"x": x})[0]
    after = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)


def test_convolutions_are_left_float_with_a_warning(digits_onnx: Path, tmp_path: Path) -> None:
    result = run_local("quantize.dynamic", digits_onnx, output_dir=tmp_path / "out")

    ops = onnx_ops(result.output.main)
    assert "Conv" in ops and "ConvInteger" not in ops
    assert [row["op"] for row in result.details["nodes_quantized"]] == ["MatMul"]  # the classifier
    assert result.details["conv_mac_share"] > 0.9
    assert any("quantize.static" in note for note in result.notes)
    assert any("not compared" in note for note in result.notes)  # no dataset was given


def test_excluded_nodes_stay_float(encoder_onnx: Path, tmp_path: Path) -> None:
    keep = "/layer.0/output/dense_1/MatMul"
    result = run_local(
        "quantize.dynamic", encoder_onnx, params={"nodes_to_exclude": [keep]}, output_dir=tmp_path / "out"
    )
    quantized = {row["node"] for row in result.details["nodes_quantized"]}
    assert keep not in quantized and len(quantized) == 13
    kept = [n for n in onnx.load(str(result.output.main)).graph.node if n.name == keep]
    assert kept and kept[0].op_type == "MatMul"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"nodes_to_exclude": ["no/such/node"]}, "no node named 'no/such/node'"),
        ({"op_types": ["LSTM"]}, "nothing to quantize"),
        ({"weight_type": "int4"}, "weight_type"),
        ({"per_chanel": True}, "no parameter 'per_chanel'"),
        ({"op_types": []}, "op_types"),
    ],
)
def test_bad_parameters_are_refused_before_work(digits_onnx: Path, tmp_path: Path, params, message) -> None:
    out = tmp_path / "out"
    with pytest.raises(ParameterError, match=message):
        run_local("quantize.dynamic", digits_onnx, params=params, output_dir=out)
    assert not any(out.glob("*.onnx"))


def test_an_already_quantized_model_is_refused(encoder_onnx: Path, tmp_path: Path) -> None:
    first = run_local("quantize.dynamic", encoder_onnx, output_dir=tmp_path / "first")
    with pytest.raises(ParameterError, match="already quantized"):
        run_local("quantize.dynamic", first.output.main, output_dir=tmp_path / "second")


def test_cancel_leaves_no_model(encoder_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(Cancelled):
        run_local("quantize.dynamic", encoder_onnx, output_dir=out, cancel_requested=cancel_after(3))
    assert not any(out.iterdir())


def test_a_torch_model_is_exported_then_quantized(digits_torch, tmp_path: Path) -> None:
    result = run_local(
        "quantize.dynamic",
        digits_torch,
        output_dir=tmp_path / "out",
        trusted=True,
        params={"op_types": ["Gemm"]},
    )
    assert result.output.kind == "onnx"
    assert len(result.details["nodes_quantized"]) == 1
    assert "MatMulInteger" in onnx_ops(result.output.main)
    # the exported and quantized file still answers like the PyTorch model it came from
    import torch

    from studio.core.data import DatasetSpec
    from studio.core.models import load_torch_module

    x, _ = validation(DatasetSpec(source="digits"))
    with torch.no_grad():
        expected = load_torch_module(digits_torch, trusted=True).eval()(torch.from_numpy(x)).numpy()
    agreement = float((onnx_outputs(result.output.main, x).argmax(1) == expected.argmax(1)).mean())
    assert agreement >= 0.99
