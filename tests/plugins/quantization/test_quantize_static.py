"""quantize.static on the shipped digits CNN: calibration, accuracy kept, and its refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from quant_helpers import cancel_after, onnx_ops, onnx_outputs, top1, validation

from studio.api import Cancelled, DatasetError, ParameterError
from studio.core.data import DatasetSpec
from studio.core.resources import resource
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
    assert d["scores"]["samples"] == 288  # the step's whole validation split (20 % of the 80 % it sees)
    assert d["reduce_range"] is True
    x, labels = validation(digits)
    before = top1(onnx_outputs(digits_onnx, x), labels)
    after = top1(onnx_outputs(result.output.main, x), labels)
    assert (before - after) * 100 <= 0.5, (before, after)  # held-out top-1 of the int8 file itself
    assert d["scores"]["accuracy"]["drop_points"] == pytest.approx((before - after) * 100)


def _largest_int8_weight(path: Path) -> int:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    weights = [
        numpy_helper.to_array(t) for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8
    ]
    return max(int(np.abs(w.astype(np.int32)).max()) for w in weights)


def test_weights_keep_seven_bits_unless_asked_for_eight(digits_onnx: Path, digits, tmp_path: Path) -> None:
    """Seven-bit weights cannot saturate the 16-bit sums of CPUs without VNNI, wherever the file runs."""
    params = {"calibration_samples": 32}
    seven = run_local(
        "quantize.static", digits_onnx, dataset=digits, params=params, output_dir=tmp_path / "a"
    )
    eight = run_local(
        "quantize.static",
        digits_onnx,
        dataset=digits,
        params={**params, "reduce_range": False},
        output_dir=tmp_path / "b",
    )
    assert _largest_int8_weight(seven.output.main) <= 64
    assert _largest_int8_weight(eight.output.main) == 127
    assert (seven.details["reduce_range"], eight.details["reduce_range"]) == (True, False)


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
    x, labels = validation(digits)
    before = top1(onnx_outputs(resource("demo", "digits_cnn.onnx"), x), labels)
    after = top1(onnx_outputs(result.output.main, x), labels)
    assert (before - after) * 100 <= 1.0, (before, after)


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
