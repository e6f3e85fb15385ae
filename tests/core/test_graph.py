"""The layer table: shapes, parameters and MACs read from the graph, checked against hand counts."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_dynamic, quantize_static

from studio.api import ModelFormatError, UntrustedFileError
from studio.core.graph import ModelInfo, inspect_model, onnx_layers
from studio.core.models import TensorSpec, collect_files, count_parameters, export_onnx, load_onnx

# The corpus network on a 1×3×8×8 input, counted by hand:
CONV_MACS = (8 * 8 * 8) * (3 * 3 * 3)  # every output element sums C_in × 3 × 3 products
LINEAR_MACS = 10 * 128
CONV_PARAMS = 8 * 3 * 3 * 3 + 8
LINEAR_PARAMS = 128 * 10 + 10


def _by_op(layers):
    return {layer.op: layer for layer in layers}


def test_hand_counted_macs_and_params_of_a_small_cnn(corpus):
    layers = onnx_layers(load_onnx(collect_files(corpus.onnx)))
    ops = _by_op(layers)
    assert (ops["Conv"].macs, ops["Conv"].params, ops["Conv"].output_shape) == (
        CONV_MACS,
        CONV_PARAMS,
        (1, 8, 8, 8),
    )
    assert (ops["Gemm"].macs, ops["Gemm"].params, ops["Gemm"].output_shape) == (
        LINEAR_MACS,
        LINEAR_PARAMS,
        (1, 10),
    )
    assert ops["Relu"].macs == ops["MaxPool"].params == 0
    assert sum(layer.params for layer in layers) == sum(p.numel() for p in corpus.module.parameters())


def test_symbolic_batch_takes_the_batch_asked_for(corpus):
    layers = onnx_layers(load_onnx(collect_files(corpus.onnx)), batch=4)
    assert _by_op(layers)["Conv"].macs == 4 * CONV_MACS
    assert _by_op(layers)["Gemm"].output_shape == (4, 10)


class _Mixed(torch.nn.Module):
    """Grouped convolution, transposed convolution and a batched matmul with broadcasting."""

    def __init__(self) -> None:
        super().__init__()
        self.grouped = torch.nn.Conv2d(8, 8, 3, padding=1, groups=4)
        self.up = torch.nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.proj = torch.nn.Parameter(torch.randn(64, 5))

    def forward(self, x):
        return torch.matmul(self.up(self.grouped(x)).flatten(2), self.proj)


def test_grouped_transposed_and_batched_matmul_macs(tmp_path):
    path = export_onnx(
        _Mixed().eval(), (torch.randn(1, 8, 4, 4),), tmp_path / "mixed.onnx", input_names=["input"]
    )
    model = onnx.load(str(path))
    for batch in (1, 3):
        ops = _by_op(onnx_layers(model, batch=batch))
        assert ops["Conv"].macs == batch * (8 * 4 * 4) * (8 // 4 * 3 * 3)
        assert ops["ConvTranspose"].macs == batch * (8 * 4 * 4) * (4 * 2 * 2)  # input elements × C_out × k²
        assert ops["MatMul"].macs == batch * 4 * 64 * 5
        assert ops["MatMul"].output_shape == (batch, 4, 5)


class _Calibration(CalibrationDataReader):
    def __init__(self, corpus) -> None:
        self._feeds = iter([{"input": corpus.example(batch).numpy()} for batch in (1, 2)])

    def get_next(self):
        return next(self._feeds, None)


@pytest.fixture(scope="module")
def quantized(corpus, tmp_path_factory):
    folder = tmp_path_factory.mktemp("quantized")
    paths = {"dynamic": folder / "dynamic.onnx", "qdq": folder / "qdq.onnx", "qoperator": folder / "qop.onnx"}
    quantize_dynamic(str(corpus.onnx), str(paths["dynamic"]))
    quantize_static(
        str(corpus.onnx),
        str(paths["qdq"]),
        _Calibration(corpus),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
    )
    quantize_static(
        str(corpus.onnx), str(paths["qoperator"]), _Calibration(corpus), quant_format=QuantFormat.QOperator
    )
    return paths


@pytest.mark.parametrize(
    ("kind", "conv_op", "linear_op"),
    [
        ("dynamic", "ConvInteger", "MatMulInteger"),
        ("qdq", "Conv", "Gemm"),
        ("qoperator", "QLinearConv", "QGemm"),
    ],
)
def test_quantized_models_still_report_macs(quantized, kind, conv_op, linear_op):
    model = onnx.load(str(quantized[kind]))
    layers = onnx_layers(model)
    ops = _by_op(layers)
    assert ops[conv_op].macs == CONV_MACS
    assert ops[linear_op].macs == LINEAR_MACS
    assert sum(layer.params for layer in layers) == count_parameters(model)


@pytest.mark.parametrize("kind", ["qdq", "qoperator"])
def test_quantization_scales_are_not_parameters(quantized, kind):
    """Weights change type, not number: scales and zero points are bookkeeping, not learned values."""
    assert count_parameters(onnx.load(str(quantized[kind]))) == CONV_PARAMS + LINEAR_PARAMS


def test_inspect_onnx_summarises_without_running(corpus):
    info = inspect_model(collect_files(corpus.onnx_external))
    assert info.format == "onnx"
    assert info.inputs == [TensorSpec("input", ("batch", 3, 8, 8), "float32")]
    assert info.params == CONV_PARAMS + LINEAR_PARAMS
    assert info.macs == CONV_MACS + LINEAR_MACS
    assert info.op_histogram == {"Conv": 1, "Relu": 1, "MaxPool": 1, "Flatten": 1, "Gemm": 1}
    assert info.size_bytes == sum(p.stat().st_size for p in corpus.onnx_external.parent.iterdir())
    assert info.opset is not None and info.producer.startswith("pytorch")
    data = info.to_dict()
    assert json.loads(json.dumps(data)) == data  # JSON-ready as it is


def test_to_dict_is_plain_data(corpus):
    data = inspect_model(collect_files(corpus.onnx)).to_dict()
    assert data["inputs"][0] == {"name": "input", "shape": ["batch", 3, 8, 8], "dtype": "float32"}
    assert data["layers"][0] == {
        "name": "/conv/Conv",
        "op": "Conv",
        "output_shape": [1, 8, 8, 8],
        "params": CONV_PARAMS,
        "macs": CONV_MACS,
    }
    assert set(data) == set(ModelInfo.__dataclass_fields__)


@pytest.mark.parametrize("name", ["arch", "torchscript", "exported_program", "pickle"])
def test_inspect_torch_models_through_onnx(corpus, name):
    weights = corpus.arch_weights if name == "arch" else None
    files = collect_files(getattr(corpus, name), weights=weights)
    info = inspect_model(
        files, trusted=True, input_shapes=[corpus.input_shape] if name in ("torchscript", "pickle") else None
    )
    assert info.format == files.format.value
    assert info.params == sum(p.numel() for p in corpus.module.parameters())
    assert info.macs == CONV_MACS + LINEAR_MACS
    assert info.inputs == [TensorSpec("input", ("batch", 3, 8, 8), "float32")]
    assert info.outputs[0].shape == ("batch", 10)
    assert info.size_bytes == files.size_bytes()


def test_inspect_keeps_the_trust_rules(corpus):
    with pytest.raises(UntrustedFileError):
        inspect_model(collect_files(corpus.pickle), input_shapes=[corpus.input_shape])
    with pytest.raises(UntrustedFileError, match="TorchScript archive"):
        inspect_model(collect_files(corpus.torchscript), input_shapes=[corpus.input_shape])
    with pytest.raises(ModelFormatError, match="does not say what input it takes"):
        inspect_model(collect_files(corpus.torchscript), trusted=True)


def test_unknown_ops_get_a_row_without_macs(corpus):
    layers = onnx_layers(onnx.load(str(corpus.unknown_op)))
    assert [layer.op for layer in layers][1] == "NoSuchOperator"
    assert layers[1].macs == 0 and _by_op(layers)["Conv"].macs == CONV_MACS


def test_layers_leave_the_callers_model_unchanged(corpus):
    """The model given is left as it was (inspection must not mutate what the caller holds)."""
    model = load_onnx(collect_files(corpus.onnx))
    before = model.SerializeToString()
    onnx_layers(model, batch=8)
    assert model.SerializeToString() == before
    np.testing.assert_array_equal(
        onnx.numpy_helper.to_array(model.graph.initializer[0]), corpus.module.conv.weight.detach().numpy()
    )
