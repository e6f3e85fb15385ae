"""Parameters and MACs of real models, checked against counts made without the studio.

Each model is a small torch module exported to ONNX (or built with ``onnx.helper`` where torch
cannot put a weight where real files do); the reference counts come from the module itself
(``numel`` of its parameters, forward hooks at the test's input size) or from the arrays the
test made. Where a count cannot be known, the studio must say so, never print 0.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from model_corpus import same_pad_conv
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from studio.cli_views import info_text, version_text
from studio.core.graph import inspect_model, onnx_layers
from studio.core.models import collect_files, count_parameters

TOLERANCE = 0.01  # the bar: within 1 % of the independent count


# -- independent counts ------------------------------------------------------------------------------


def torch_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def torch_macs(module: nn.Module, x: torch.Tensor) -> int:
    """Conv and Linear MACs from forward hooks at ``x``'s size, per sample; matmuls by ``extra``."""
    total = 0

    def hook(layer: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(layer, nn.Conv2d):
            per_output = layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
        else:
            per_output = layer.in_features
        total += output.numel() // output.shape[0] * per_output

    hooks = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            module(x)
    finally:
        for h in hooks:
            h.remove()
    return total + getattr(module, "extra_macs", lambda _x: 0)(x)


def close(found: int | None, expected: int) -> bool:
    return found is not None and abs(found - expected) <= TOLERANCE * expected


def export(module: nn.Module, x: torch.Tensor, path: Path, *, dynamic_hw: bool = False) -> Path:
    axes = {0: "batch", 2: "height", 3: "width"} if dynamic_hw else {0: "batch"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            (x,),
            str(path),
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": axes},
            dynamo=False,
        )
    return path


def ort_output(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def total_macs(layers) -> int | None:
    macs = [layer.macs for layer in layers]
    return None if None in macs else sum(macs)


# -- the models -----------------------------------------------------------------------------------------


class ConvLinearMatmul(nn.Module):
    """A standard, a depthwise and a pointwise convolution, a Linear and a matrix product."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.depthwise = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.pointwise = nn.Conv2d(16, 32, 1)
        self.fc = nn.Linear(32, 24)
        self.proj = nn.Parameter(torch.randn(24, 12))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pointwise(F.relu(self.depthwise(F.relu(self.conv(x)))))
        tokens = x.flatten(2).transpose(1, 2)  # batch × positions × 32
        return self.fc(tokens) @ self.proj

    def extra_macs(self, x: torch.Tensor) -> int:
        return x.shape[2] * x.shape[3] * 24 * 12


SamePadConv = same_pad_conv()


class EfficientNetStyle(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = SamePadConv(3, 16, 3, stride=2)
        self.depthwise = SamePadConv(16, 16, 5, stride=2, groups=16)
        self.project = nn.Conv2d(16, 24, 1)
        self.head = nn.Linear(24, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.project(F.silu(self.depthwise(F.silu(self.stem(x)))))
        return self.head(x.mean((2, 3)))


class YoloStyle(nn.Module):
    """A backbone at two scales, an upsampled top-down path joined by Concat, two 1×1 heads
    whose outputs are reshaped from the feature map's own (dynamic) size."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.c2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.c3 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.lateral = nn.Conv2d(32, 16, 1)
        self.fuse = nn.Conv2d(32, 16, 3, padding=1)
        self.head_small = nn.Conv2d(32, 3 * 7, 1)
        self.head_large = nn.Conv2d(16, 3 * 7, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p3 = self.c2(F.silu(self.c1(x)))
        p4 = self.c3(F.silu(p3))
        up = F.interpolate(self.lateral(p4), size=p3.shape[-2:], mode="nearest")
        p3 = self.fuse(torch.cat([up, p3], dim=1))
        outs = []
        for head, feature in ((self.head_small, p4), (self.head_large, p3)):
            y = head(feature)
            b, _, h, w = y.shape
            outs.append(y.view(b, 3, 7, h * w).permute(0, 1, 3, 2).reshape(b, -1, 7))
        return torch.cat(outs, dim=1)


class FixedFlatten(nn.Module):
    """Accepts 8×8 inputs only: the Linear layer's width is the flattened feature map's."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).flatten(1))


# -- convolutions, Linear and matmul: static shapes --------------------------------------------------------


def test_static_model_agrees_with_torch_and_is_not_run(tmp_path, monkeypatch):
    torch.manual_seed(0)
    module, x = ConvLinearMatmul().eval(), torch.randn(1, 3, 12, 10)
    path = export(module, x, tmp_path / "clm.onnx")
    sessions = _count_sessions(monkeypatch)
    info = inspect_model(collect_files(path))
    assert sessions == []  # shape inference knew every shape: nothing ran
    assert info.params == torch_params(module)
    assert close(info.macs, torch_macs(module, x))
    depthwise = [layer for layer in info.layers if layer.op == "Conv"][1]
    assert depthwise.macs == 16 * 12 * 10 * 9  # one input channel per output: C_in / groups = 1
    assert info.counted_inputs == {"input": [1, 3, 12, 10]}


# -- dynamic sizes ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dynamic_hw(tmp_path_factory) -> tuple[nn.Module, Path]:
    torch.manual_seed(0)
    module = ConvLinearMatmul().eval()
    return module, export(
        module, torch.randn(1, 3, 12, 10), tmp_path_factory.mktemp("dyn") / "d.onnx", dynamic_hw=True
    )


def test_dynamic_height_and_width_take_the_recorded_input_shape(dynamic_hw):
    module, path = dynamic_hw
    info = inspect_model(collect_files(path), input_shapes=[(4, 3, 20, 16)])
    assert info.params == torch_params(module)
    assert close(info.macs, torch_macs(module, torch.randn(1, 3, 20, 16)))  # per sample: batch 1
    assert info.counted_inputs == {"input": [1, 3, 20, 16]}


def test_open_sizes_without_a_recorded_shape_are_counted_at_a_default_the_model_accepts(
    dynamic_hw, monkeypatch
):
    module, path = dynamic_hw
    sessions = _count_sessions(monkeypatch)
    info = inspect_model(collect_files(path))
    assert len(sessions) == 1  # one run, never more
    (shape,) = info.counted_inputs.values()
    assert shape[:2] == [1, 3]
    assert close(info.macs, torch_macs(module, torch.randn(*shape)))
    assert all(layer.output_shape is None or None not in layer.output_shape for layer in info.layers)


def test_a_run_for_shapes_reads_external_weights(dynamic_hw, tmp_path):
    module, path = dynamic_hw
    model = onnx.load(str(path))
    onnx.save(
        model, str(tmp_path / "ext.onnx"), save_as_external_data=True, location="ext.data", size_threshold=0
    )
    info = inspect_model(collect_files(tmp_path / "ext.onnx"))
    (shape,) = info.counted_inputs.values()
    assert info.params == torch_params(module)
    assert close(info.macs, torch_macs(module, torch.randn(*shape)))


def test_minus_one_and_unnamed_dimensions_never_give_negative_counts(dynamic_hw, tmp_path):
    module, path = dynamic_hw
    model = onnx.load(str(path))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[0].dim_value = -1  # [-1, 3, ?, ?]
    dims[2].Clear()
    dims[3].Clear()
    onnx.save(model, str(tmp_path / "minus_one.onnx"))
    info = inspect_model(collect_files(tmp_path / "minus_one.onnx"))
    assert all(layer.macs is not None and layer.macs >= 0 for layer in info.layers)
    (shape,) = info.counted_inputs.values()
    assert shape[0] == 1
    assert close(info.macs, torch_macs(module, torch.randn(*shape)))


def test_efficientnet_style_dynamic_padding(tmp_path, monkeypatch):
    """Neither inference follows the padding arithmetic: one run on the recorded size does."""
    torch.manual_seed(0)
    module, x = EfficientNetStyle().eval(), torch.randn(1, 3, 37, 45)
    path = export(module, x, tmp_path / "eff.onnx", dynamic_hw=True)
    assert "Pad" in {node.op_type for node in onnx.load(str(path)).graph.node}
    monkeypatch.chdir(tmp_path)
    sessions = _count_sessions(monkeypatch)
    info = inspect_model(collect_files(path), input_shapes=[(1, 3, 37, 45)])
    assert len(sessions) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eff.onnx"]  # nothing written beside it
    assert info.params == torch_params(module)
    assert close(info.macs, torch_macs(module, x))
    assert all(layer.macs is not None for layer in info.layers)


def test_yolo_style_detector_with_resize_and_concat(tmp_path):
    torch.manual_seed(0)
    module, x = YoloStyle().eval(), torch.randn(1, 3, 64, 96)
    path = export(module, x, tmp_path / "yolo.onnx", dynamic_hw=True)
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert {"Resize", "Concat"} <= ops
    info = inspect_model(collect_files(path), input_shapes=[(1, 3, 64, 96)])
    assert info.params == torch_params(module)
    assert close(info.macs, torch_macs(module, x))


def test_a_model_that_rejects_the_default_size_stays_unknown(tmp_path):
    torch.manual_seed(0)
    module, x = FixedFlatten().eval(), torch.randn(1, 3, 8, 8)
    path = export(module, x, tmp_path / "fixed.onnx", dynamic_hw=True)
    unknown = inspect_model(collect_files(path))
    assert unknown.macs is None and unknown.counted_inputs is None
    assert next(layer for layer in unknown.layers if layer.op == "Conv").macs is None
    assert unknown.params == torch_params(module)  # parameters never depend on shapes
    known = inspect_model(collect_files(path), input_shapes=[(1, 3, 8, 8)])
    assert close(known.macs, torch_macs(module, x))


# -- where weights live -----------------------------------------------------------------------------------


def test_weights_in_constant_nodes(tmp_path):
    """Initializers moved into Constant nodes: as a tensor, as a float list, as a sparse tensor."""
    torch.manual_seed(0)
    module, x = ConvLinearMatmul().eval(), torch.randn(1, 3, 12, 10)
    model = onnx.load(str(export(module, x, tmp_path / "clm.onnx")))
    constants = []
    for i, tensor in enumerate(model.graph.initializer):
        array = numpy_helper.to_array(tensor)
        if array.ndim == 1 and i % 2:
            value = helper.make_attribute("value_floats", array.astype(np.float32).tolist())
            constants.append(helper.make_node("Constant", [], [tensor.name]))
            constants[-1].attribute.append(value)
        else:
            constants.append(helper.make_node("Constant", [], [tensor.name], value=tensor))
    model.graph.ClearField("initializer")
    nodes = list(model.graph.node)
    model.graph.ClearField("node")
    model.graph.node.extend(constants + nodes)
    np.testing.assert_allclose(ort_output(model, x.numpy()), module(x).detach().numpy(), atol=1e-4)
    layers = onnx_layers(model)
    assert sum(layer.params for layer in layers) == torch_params(module)
    assert close(total_macs(layers), torch_macs(module, x))


def test_a_weight_from_constant_of_shape(tmp_path):
    """A zero bias stored as ConstantOfShape of a constant shape is still a parameter."""
    torch.manual_seed(0)
    module, x = ConvLinearMatmul().eval(), torch.randn(1, 3, 12, 10)
    nn.init.zeros_(module.fc.bias)
    model = onnx.load(str(export(module, x, tmp_path / "clm.onnx")))
    bias = next(t for t in model.graph.initializer if numpy_helper.to_array(t).shape == (24,))
    model.graph.initializer.remove(bias)
    shape = numpy_helper.from_array(np.array([24], dtype=np.int64), f"{bias.name}_shape")
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0])
    fill = [
        helper.make_node("Constant", [], [shape.name], value=shape),
        helper.make_node("ConstantOfShape", [shape.name], [bias.name], value=zero),
    ]
    nodes = list(model.graph.node)
    model.graph.ClearField("node")
    model.graph.node.extend(fill + nodes)
    np.testing.assert_allclose(ort_output(model, x.numpy()), module(x).detach().numpy(), atol=1e-4)
    layers = onnx_layers(model)
    assert sum(layer.params for layer in layers) == torch_params(module)
    assert close(total_macs(layers), torch_macs(module, x))


def _branch(name: str, weights: list[np.ndarray], shared_bias: str, *, as_constant: bool) -> onnx.GraphProto:
    """A branch computing ``x @ W… + bias``, its weights inside it (initializers or Constants)."""
    nodes, initializers, value = [], [], "x"
    for i, weight in enumerate(weights):
        tensor = numpy_helper.from_array(weight, f"{name}_w{i}")
        if as_constant:
            nodes.append(helper.make_node("Constant", [], [tensor.name], value=tensor))
        else:
            initializers.append(tensor)
        nodes.append(helper.make_node("MatMul", [value, tensor.name], [f"{name}_mm{i}"]))
        value = f"{name}_mm{i}"
    nodes.append(helper.make_node("Add", [value, shared_bias], [f"{name}_y"]))
    out = helper.make_tensor_value_info(f"{name}_y", TensorProto.FLOAT, [4, 8])
    return helper.make_graph(nodes, name, [], [out], initializers)


def _if_model(*, else_layers: int = 1) -> tuple[onnx.ModelProto, int]:
    """``y = If(flag, x @ W1 + b, x @ W2 (@ W3) + b)`` with x: 4×16; the model and its weight count."""
    rng = np.random.default_rng(0)
    then = [rng.standard_normal((16, 8)).astype(np.float32)]
    other = [rng.standard_normal((16, 8)).astype(np.float32)]
    other += [rng.standard_normal((8, 8)).astype(np.float32) for _ in range(else_layers - 1)]
    bias = numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "b")  # read by both
    node = helper.make_node(
        "If",
        ["flag"],
        ["y"],
        then_branch=_branch("then", then, "b", as_constant=False),
        else_branch=_branch("else", other, "b", as_constant=True),
    )
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 16]),
        helper.make_tensor_value_info("flag", TensorProto.BOOL, []),
    ]
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])
    graph = helper.make_graph([node], "if_model", inputs, [output], [bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model, full_check=True)
    for flag in (True, False):  # a real, runnable model
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        assert session.run(None, {"x": np.ones((4, 16), np.float32), "flag": np.array(flag)})[0].shape == (
            4,
            8,
        )
    return model, sum(w.size for w in then + other) + 8


def test_weights_inside_an_if_subgraph_count_once_each():
    model, weights = _if_model()
    (layer,) = onnx_layers(model)
    assert layer.params == weights == 16 * 8 * 2 + 8  # the shared bias once
    assert layer.macs == 4 * 16 * 8  # both branches cost the same: the count is known


def test_if_branches_of_different_cost_are_unknown_not_zero(tmp_path):
    model, weights = _if_model(else_layers=2)
    onnx.save(model, str(tmp_path / "if.onnx"))
    info = inspect_model(collect_files(tmp_path / "if.onnx"))
    assert info.params == weights == 16 * 8 * 2 + 8 * 8 + 8
    assert info.layers[0].macs is None and info.macs is None
    text = info_text(info.to_dict())
    assert "MACs: unknown" in text and "MACs: 0" not in text
    assert "unknown" in text.splitlines()[-1]  # the If's row
    version = {
        "id": 1,
        "name": "m",
        "parent_id": None,
        "format": "onnx",
        "size_bytes": 10,
        "artifact": "0" * 64,
    }
    assert "MACs       unknown" in version_text({**version, "params": info.params, "macs": info.macs})


def test_a_tensor_a_branch_reads_only_for_its_shape_is_not_a_parameter():
    """Inside a subgraph as at the top: a tensor read by Shape is a size, not a learned value."""
    rng = np.random.default_rng(1)
    weight = numpy_helper.from_array(rng.standard_normal((16, 8)).astype(np.float32), "W")
    template = numpy_helper.from_array(np.zeros((4, 8), np.float32), "template")
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"]),
        helper.make_node("Shape", ["template"], ["size"]),
        helper.make_node("Reshape", ["h", "size"], ["branch_y"]),
    ]
    out = helper.make_tensor_value_info("branch_y", TensorProto.FLOAT, [4, 8])
    branch = helper.make_graph(nodes, "branch", [], [out], [weight, template])
    graph = helper.make_graph(
        [helper.make_node("If", ["flag"], ["y"], then_branch=branch, else_branch=branch)],
        "shape_only",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 16]),
            helper.make_tensor_value_info("flag", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model, full_check=True)
    (layer,) = onnx_layers(model)
    assert layer.params == count_parameters(model) == 16 * 8  # W only, once: both branches are one graph
    assert layer.macs == 4 * 16 * 8


def test_a_loop_with_a_fixed_trip_count_counts_its_body_each_time():
    """``for _ in range(5): h = h @ W``: W (16×16) lives in the Loop's body."""
    weight = np.eye(16, dtype=np.float32)
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("MatMul", ["h_in", "W"], ["h_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("h_in", TensorProto.FLOAT, [2, 16]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("h_out", TensorProto.FLOAT, [2, 16]),
        ],
        [numpy_helper.from_array(weight, "W")],
    )
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trips", "go", "x"], ["y"], body=body)],
        "loop_model",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 16])],
        [
            numpy_helper.from_array(np.array(5, np.int64), "trips"),
            numpy_helper.from_array(np.array(True), "go"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert session.run(None, {"x": np.ones((2, 16), np.float32)})[0].shape == (2, 16)
    (layer,) = onnx_layers(model)
    assert layer.params == weight.size
    assert layer.macs == 5 * 2 * 16 * 16


# -- the layer table ----------------------------------------------------------------------------------------


def test_unknown_counts_render_as_unknown_in_the_text_table(tmp_path):
    torch.manual_seed(0)
    path = export(FixedFlatten().eval(), torch.randn(1, 3, 8, 8), tmp_path / "fixed.onnx", dynamic_hw=True)
    text = info_text(inspect_model(collect_files(path)).to_dict())
    conv_row = next(line for line in text.splitlines() if line.startswith("/conv/Conv"))
    assert "unknown" in conv_row
    assert "MACs: unknown" in text


@pytest.mark.ui
def test_unknown_counts_render_as_unknown_in_the_layer_model():
    pytest.importorskip("PySide6")
    from studio.core.graph import Layer
    from studio.ui.models.layer_model import SORT_ROLE, LayerTableModel

    model = LayerTableModel()
    model.set_layers(
        [Layer("conv", "Conv", (1, 8, 4, 4), 224, None), Layer("relu", "Relu", (1, 8, 4, 4), 0, 0)]
    )
    macs, share = (model.index(0, column) for column in (5, 6))
    assert (macs.data(), share.data()) == ("unknown", "")
    assert model.index(1, 5).data() == ""  # a node that costs nothing stays blank
    assert model.total_macs is None
    assert model.index(0, 5).data(SORT_ROLE) < model.index(1, 5).data(SORT_ROLE)


def _count_sessions(monkeypatch) -> list[object]:
    """Records every ONNX Runtime session made, so a test can see whether the model ran."""
    made: list[object] = []
    real = ort.InferenceSession

    def spy(*args, **kwargs):
        made.append(args[0] if args else None)
        return real(*args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", spy)
    return made


def test_dynamic_quantization_scales_are_not_counted_as_parameters(tmp_path: Path):
    """ONNX Runtime multiplies per-channel weight scales into the activations' scale with a Mul;
    counted as learned values, they made every int8 model look bigger than its float parent."""
    from onnxruntime.quantization import quantize_dynamic

    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 10)).eval()
    source, target = tmp_path / "float.onnx", tmp_path / "int8.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(1, 64),), str(source), input_names=["x"], dynamo=False)
    quantize_dynamic(str(source), str(target), per_channel=True, op_types_to_quantize=["MatMul", "Gemm"])
    quantized = onnx.load(str(target))
    assert any(n.op_type == "DynamicQuantizeLinear" for n in quantized.graph.node)
    assert count_parameters(quantized) == torch_params(module) == count_parameters(onnx.load(str(source)))
