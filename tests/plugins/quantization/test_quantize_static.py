"""quantize.static on the shipped digits CNN: calibration, accuracy kept, and its refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from quant_helpers import cancel_after, onnx_ops

from studio.api import Cancelled, DatasetError, ParameterError
from studio.core.data import DatasetSpec
from studio.core.techniques import run_local


def test_digits_cnn_keeps_its_accuracy_in_int8(digits_onnx: Path, digits, tmp_path: Path) -> None:
    result = run_local("quantize.static", digits_onnx, dataset=digits, output_dir=tmp_path / "out")

    ops = onnx_ops(result.output.main)
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    d = result.details
    assert d["calibration_samples"] == 128 and d["calibration_method"] == "minmax"
    assert {row["op"] for row in d["nodes_quantized"]} == {"Conv", "Gemm"}
    assert len(d["nodes_quantized"]) == 5
    assert d["size_ratio"] > 3.5
    assert d["scores"]["accuracy"]["drop_points"] <= 0.5
    assert d["scores"]["samples"] == 359  # the whole validation split


def test_a_torch_model_and_qoperator_format(digits_torch, digits, tmp_path: Path) -> None:
    result = run_local(
        "quantize.static",
        digits_torch,
        dataset=digits,
        trusted=True,
        params={"quant_format": "qoperator", "calibration_samples": 32, "per_channel": False},
        output_dir=tmp_path / "out",
    )
    assert "QLinearConv" in onnx_ops(result.output.main)
    assert result.details["calibration_samples"] == 32
    assert result.details["scores"]["accuracy"]["drop_points"] <= 1.0


def test_entropy_calibration_and_exclusions(digits_onnx: Path, digits, tmp_path: Path) -> None:
    first_conv = "/features/features.0/Conv"
    result = run_local(
        "quantize.static",
        digits_onnx,
        dataset=digits,
        params={"calibration_method": "entropy", "calibration_samples": 32, "nodes_to_exclude": [first_conv]},
        output_dir=tmp_path / "out",
    )
    quantized = {row["node"] for row in result.details["nodes_quantized"]}
    assert first_conv not in quantized and len(quantized) == 4
    assert result.details["calibration_method"] == "entropy"


def test_too_few_calibration_samples_are_refused(digits_onnx: Path, small_digits, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(ParameterError, match="at least 16"):
        run_local("quantize.static", digits_onnx, dataset=small_digits, output_dir=out)
    assert not any(out.iterdir())


def test_a_dataset_of_the_wrong_shape_is_refused(digits_onnx: Path, tmp_path: Path) -> None:
    path = tmp_path / "wrong.npz"
    np.savez(path, x=np.zeros((40, 3, 32, 32), np.float32), y=np.zeros(40, np.int64))
    with pytest.raises(DatasetError, match="shape"):
        run_local(
            "quantize.static", digits_onnx, dataset=DatasetSpec(source=str(path)), output_dir=tmp_path / "o"
        )


def test_no_dataset_is_refused(digits_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="needs a dataset"):
        run_local("quantize.static", digits_onnx, output_dir=tmp_path / "out")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"calibration_samples": 4}, "calibration_samples"),
        ({"calibration_method": "kl"}, "calibration_method"),
        ({"nodes_to_exclude": ["nope"]}, "no node named 'nope'"),
    ],
)
def test_bad_parameters(digits_onnx: Path, digits, tmp_path: Path, params, message) -> None:
    with pytest.raises(ParameterError, match=message):
        run_local("quantize.static", digits_onnx, dataset=digits, params=params, output_dir=tmp_path / "out")


def test_cancel_during_calibration_leaves_no_model(digits_onnx: Path, digits, tmp_path: Path) -> None:
    out = tmp_path / "out"
    progress: list[str] = []
    with pytest.raises(Cancelled):
        run_local(
            "quantize.static",
            digits_onnx,
            dataset=digits,
            output_dir=out,
            progress=lambda f, m: progress.append(m),
            cancel_requested=cancel_after(6),
        )
    assert "calibrating" in progress
    assert not any(out.iterdir())
