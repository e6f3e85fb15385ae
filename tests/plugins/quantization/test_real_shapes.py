"""The quantizers on shapes that third-party files really have.

Every model here is built for real: a small torch module exported at the opset and with the input
shape of the case, or a graph written with ``onnx.helper``. A result counts as right when its
outputs follow the float model's on inputs that neither calibration nor validation saw.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from quant_helpers import onnx_ops
from torch import nn

from studio.api import ParameterError, StudioError, module_macs
from studio.core.data import DatasetSpec
from studio.core.techniques import run_local

FLOOR = 0.99  # minimum cosine to the float model, per held-out sample, for a small well-conditioned net


class SmallConvNet(nn.Module):
    """Two convolutions and a linear classifier: the shape of a small image model."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1, stride=2),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(16, 5),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class TextRecognizer(nn.Module):
    """A text-line recogniser: convolutions over an image of any height and width, then a
    per-column classifier. Almost all of its multiply-adds are in the convolutions."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Linear(128, 512), nn.ReLU(), nn.Linear(512, 100))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        columns = self.convs(x).mean(dim=2).transpose(1, 2)  # batch, width / 4, channels
        return self.head(columns)


def export(module: nn.Module, path: Path, example: torch.Tensor, *, opset: int = 13, **options) -> Path:
    torch.manual_seed(0)
    torch.onnx.export(
        module.eval(),
        (example,),
        str(path),
        dynamo=False,
        opset_version=opset,
        input_names=["x"],
        output_names=["y"],
        **options,
    )
    return path


def conv_net(path: Path, *, opset: int = 13, fixed_batch: bool = False, **options) -> Path:
    torch.manual_seed(0)
    axes = None if fixed_batch else {"x": {0: "batch"}, "y": {0: "batch"}}
    return export(SmallConvNet(), path, torch.randn(1, 3, 32, 32), opset=opset, dynamic_axes=axes, **options)


def samples(path: Path, shape: tuple[int, ...], n: int, seed: int) -> DatasetSpec:
    x = np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32)
    np.savez(path, x=x)
    return DatasetSpec(source=str(path))


def held_out(shape: tuple[int, ...], n: int = 12) -> np.ndarray:
    """Inputs drawn apart from every dataset of these tests."""
    return np.random.default_rng(12345).standard_normal((n, *shape)).astype(np.float32)


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    """Outputs one sample at a time, which every graph here accepts, a fixed batch of 1 included."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))])


def min_cosine(quantized: Path, reference: Path, x: np.ndarray) -> float:
    a = run_onnx(quantized, x).reshape(len(x), -1).astype(np.float64)
    b = run_onnx(reference, x).reshape(len(x), -1).astype(np.float64)
    cosines = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(cosines.min())


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> DatasetSpec:
    # 400: quantize.auto judges its tolerance on at least 64 samples the step keeps from calibration
    return samples(tmp_path_factory.mktemp("images") / "images.npz", (3, 32, 32), 400, seed=0)


# -- 1. opset 11 and 12 ------------------------------------------------------------------------------


@pytest.mark.parametrize("opset", [11, 12])
def test_an_old_opset_is_converted_so_per_channel_scales_load(
    opset: int, images: DatasetSpec, tmp_path: Path
) -> None:
    source = conv_net(tmp_path / f"opset{opset}.onnx", opset=opset)
    result = run_local("quantize.static", source, dataset=images, output_dir=tmp_path / "out")

    model = onnx.load(str(result.output.main))
    assert next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == 13
    per_channel = [
        n
        for n in model.graph.node
        if n.op_type == "DequantizeLinear" and any(a.name == "axis" for a in n.attribute)
    ]
    assert per_channel and result.details["per_channel"] is True
    assert any(f"opset {opset} was converted to 13" in note for note in result.notes)
    assert min_cosine(result.output.main, source, held_out((3, 32, 32))) > FLOOR


def test_an_opset_the_converter_cannot_take_is_said_to_stay_per_tensor() -> None:
    """The converter has no schema for an operator it does not know; the model keeps its opset."""
    from studio_quantization._legacy import modernize

    weight = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("NotAnOnnxOperator", ["h"], ["y"])],
        "old",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])

    found = modernize(model)
    assert found.per_channel_possible is False
    assert model.opset_import[0].version == 11
    assert any("could not be converted to 13" in note for note in found.notes)


# -- 2. IR version 3: weights listed as inputs -----------------------------------------------------


def as_ir3(source: Path, target: Path) -> Path:
    """The layout of the first model zoo: IR version 3, every weight also a graph input."""
    model = onnx.load(str(source))
    listed = {i.name for i in model.graph.input}
    for t in model.graph.initializer:
        if t.name not in listed:
            model.graph.input.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    model.ir_version = 3
    onnx.save(model, str(target))
    return target


class Mlp(nn.Module):
    """Linear layers, which export as Gemm; weights of unit gain so that no output is near zero."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4)
        )
        for layer in self.body:
            if isinstance(layer, nn.Linear):
                nn.init.orthogonal_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@pytest.mark.parametrize(
    ("technique", "params"),
    [
        ("quantize.static", {}),
        ("quantize.static", {"preprocess": False}),
        ("quantize.auto", {}),
    ],
)
def test_an_ir3_conv_net_is_quantized_with_its_weights_as_weights(
    technique: str, params: dict, images: DatasetSpec, tmp_path: Path
) -> None:
    source = as_ir3(conv_net(tmp_path / "zoo.onnx", opset=9), tmp_path / "zoo-ir3.onnx")
    result = run_local(technique, source, dataset=images, params=params, output_dir=tmp_path / "out")

    model = onnx.load(str(result.output.main))
    assert [i.name for i in model.graph.input] == ["x"]
    assert model.ir_version >= 7
    assert "QuantizeLinear" in onnx_ops(result.output.main)
    assert any("listed as graph inputs" in note for note in result.notes)
    assert min_cosine(result.output.main, source, held_out((3, 32, 32))) > FLOOR


@pytest.mark.parametrize(
    ("technique", "params"),
    [
        # 7-bit weights: a CPU without VNNI saturates the sums of full 8-bit per-channel weights
        ("quantize.dynamic", {"reduce_range": True}),
        ("quantize.dynamic", {"reduce_range": True, "preprocess": False}),
        ("quantize.auto", {}),
    ],
)
def test_an_ir3_mlp_keeps_no_input_for_a_rewritten_gemm(technique: str, params: dict, tmp_path: Path) -> None:
    """Gemm → MatMul rewriting drops the old weight: an input of that name could never be fed."""
    torch.manual_seed(0)
    exported = export(
        Mlp(),
        tmp_path / "mlp.onnx",
        torch.randn(1, 16),
        opset=9,
        dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
    )
    source = as_ir3(exported, tmp_path / "mlp-ir3.onnx")
    data = samples(tmp_path / "vectors.npz", (16,), 120, seed=1)
    result = run_local(technique, source, dataset=data, params=params, output_dir=tmp_path / "out")

    assert [i.name for i in onnx.load(str(result.output.main)).graph.input] == ["x"]
    assert min_cosine(result.output.main, source, held_out((16,), 40)) > FLOOR


def ir3_without_weighted_nodes(path: Path) -> Path:
    scale = numpy_helper.from_array(np.full((1, 4), 2.0, np.float32), "scale")
    shift = numpy_helper.from_array(np.full((1, 4), 0.5, np.float32), "shift")
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "scale"], ["m"]), helper.make_node("Add", ["m", "shift"], ["y"])],
        "affine",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4]),
            helper.make_tensor_value_info("scale", TensorProto.FLOAT, [1, 4]),
            helper.make_tensor_value_info("shift", TensorProto.FLOAT, [1, 4]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [scale, shift],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 8)])
    model.ir_version = 3
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("technique", ["quantize.static", "quantize.auto"])
def test_nothing_to_quantize_is_refused_not_handed_over(technique: str, tmp_path: Path) -> None:
    source = ir3_without_weighted_nodes(tmp_path / "affine.onnx")
    data = samples(tmp_path / "vectors.npz", (4,), 400, seed=2)
    out = tmp_path / "out"
    params = {"preprocess": False} if technique == "quantize.static" else {}
    with pytest.raises(ParameterError, match="nothing to quantize"):
        run_local(technique, source, dataset=data, params=params, output_dir=out)
    assert not any(out.glob("*.onnx"))


def test_a_result_with_every_node_excluded_is_refused(images: DatasetSpec, tmp_path: Path) -> None:
    source = conv_net(tmp_path / "net.onnx")
    names = [n.name for n in onnx.load(str(source)).graph.node if n.op_type in ("Conv", "Gemm")]
    out = tmp_path / "out"
    with pytest.raises(ParameterError, match="quantized none of the model's 3"):
        run_local(
            "quantize.static", source, dataset=images, params={"nodes_to_exclude": names}, output_dir=out
        )
    assert not any(out.glob("*.onnx"))


# -- 3. a bias that is not one-dimensional ------------------------------------------------------------


def with_2d_gemm_bias(source: Path, target: Path) -> Path:
    """The classifier's bias as [1, N], as older exporters write a Gemm's C."""
    model = onnx.load(str(source))
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    for t in model.graph.initializer:
        if t.name == gemm.input[2]:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).reshape(1, -1), t.name))
    onnx.save(model, str(target))
    return target


def test_onnx_runtime_fails_per_channel_on_that_bias(
    images: DatasetSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model below is the one ONNX Runtime's per-channel bias check cannot take."""
    from onnxruntime.quantization import quantize_static

    monkeypatch.chdir(tmp_path)
    source = with_2d_gemm_bias(conv_net(tmp_path / "net.onnx"), tmp_path / "bias2d.onnx")
    x = images.load().split("calibration").arrays["x"][:8]
    reader = iter([{"x": x}])

    class Reader:
        def get_next(self) -> dict | None:
            return next(reader, None)

    with pytest.raises(ValueError, match="truth value of an array"):
        quantize_static(str(source), str(tmp_path / "q.onnx"), Reader(), per_channel=True)


@pytest.mark.parametrize(
    ("technique", "params"),
    [("quantize.static", {}), ("quantize.static", {"quant_format": "qoperator"}), ("quantize.auto", {})],
)
def test_a_2d_bias_is_quantized_per_tensor_and_stays_right(
    technique: str, params: dict, images: DatasetSpec, tmp_path: Path
) -> None:
    source = with_2d_gemm_bias(conv_net(tmp_path / "net.onnx"), tmp_path / "bias2d.onnx")
    result = run_local(technique, source, dataset=images, params=params, output_dir=tmp_path / "out")

    assert result.details["per_channel"] is False
    assert any("one scale per tensor" in note for note in result.notes)
    assert min_cosine(result.output.main, source, held_out((3, 32, 32))) > FLOOR


# -- 4. a fixed batch of 1 -----------------------------------------------------------------------------


@pytest.mark.parametrize("technique", ["quantize.static", "quantize.dynamic", "quantize.auto"])
def test_a_fixed_batch_of_one_is_fed_one_sample_at_a_time(
    technique: str, images: DatasetSpec, tmp_path: Path
) -> None:
    source = conv_net(tmp_path / "batch1.onnx", fixed_batch=True)
    assert [d.dim_value for d in onnx.load(str(source)).graph.input[0].type.tensor_type.shape.dim] == [
        1,
        3,
        32,
        32,
    ]
    result = run_local(technique, source, dataset=images, output_dir=tmp_path / "out")

    assert min_cosine(result.output.main, source, held_out((3, 32, 32))) > FLOOR


def test_the_sensitivity_search_runs_a_fixed_batch_model(images: DatasetSpec, tmp_path: Path) -> None:
    """An unreachable floor makes quantize.auto probe every layer and search: all in batches of 1."""
    source = conv_net(tmp_path / "batch1.onnx", fixed_batch=True)
    with pytest.raises(StudioError, match="no candidate met the tolerance"):
        run_local(
            "quantize.auto",
            source,
            dataset=images,
            params={"cosine_floor": 1.0, "max_trials": 2},
            output_dir=tmp_path / "out",
        )


# -- 5. nothing left in the user's directory -----------------------------------------------------------


def with_contrib_head(path: Path) -> Path:
    """A dense layer and a com.microsoft FusedMatMul head, as ONNX Runtime's optimiser saves them.

    Symbolic shape inference does not know the contrib operator; when it gives up it saves what
    it has into the current directory, weights over 1 KiB in a ``<uuid>.data`` beside it.
    """
    rng = np.random.default_rng(0)
    dense = numpy_helper.from_array((rng.standard_normal((64, 256)) / 8).astype(np.float32), "dense_w")
    head = numpy_helper.from_array((rng.standard_normal((256, 10)) / 16).astype(np.float32), "head_w")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "dense_w"], ["h"], name="dense"),
            helper.make_node("Relu", ["h"], ["r"], name="relu"),
            helper.make_node(
                "FusedMatMul", ["r", "head_w"], ["y"], name="head", domain="com.microsoft", alpha=1.0
            ),
        ],
        "contrib",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])],
        [dense, head],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)]
    )
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("technique", ["quantize.static", "quantize.dynamic", "quantize.auto"])
def test_the_current_directory_stays_empty(
    technique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    source = with_contrib_head(tmp_path / "contrib.onnx")
    data = samples(tmp_path / "vectors.npz", (64,), 120, seed=3)  # quantize.auto: 96 the step judges
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    default_temp = tempfile.tempdir
    result = run_local(technique, source, dataset=data, output_dir=tmp_path / "out")

    assert list(cwd.iterdir()) == []
    assert Path.cwd() == cwd and tempfile.tempdir == default_temp
    assert min_cosine(result.output.main, source, held_out((64,), 20)) > FLOOR


# -- 6. where the multiply-adds are ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recognizer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The recogniser exported with a free batch, height and width, and its convolutions' share
    of the multiply-adds on a 32 × 128 line, counted on the torch module itself."""
    torch.manual_seed(0)
    module = TextRecognizer().eval()
    path = export(
        module,
        tmp_path_factory.mktemp("ocr") / "ocr.onnx",
        torch.randn(1, 1, 32, 128),
        dynamic_axes={"x": {0: "batch", 2: "height", 3: "width"}, "y": {0: "batch", 1: "columns"}},
    )
    line = (torch.randn(1, 1, 32, 128),)
    share = module_macs(module.convs, line) / module_macs(module, line)
    return path, share


@pytest.fixture(scope="module")
def lines(tmp_path_factory: pytest.TempPathFactory) -> DatasetSpec:
    return samples(tmp_path_factory.mktemp("lines") / "lines.npz", (1, 32, 128), 400, seed=4)


def test_a_recognizer_with_free_height_and_width_is_counted_on_a_real_line(
    recognizer: tuple[Path, float], lines: DatasetSpec, tmp_path: Path
) -> None:
    source, share = recognizer
    assert share > 0.9
    result = run_local("quantize.auto", source, dataset=lines, output_dir=tmp_path / "out")

    d = result.details
    assert d["mode"] == "static"
    assert d["compute"]["counted"] == "macs" and d["compute"]["input_shapes"] == {"x": [1, 1, 32, 128]}
    assert d["compute"]["conv_share"] == pytest.approx(share, abs=0.01)
    assert (
        d["mode_reason"]
        == f"convolutions hold {share:.0%} of the multiply-adds, so static quantization was used"
    )
    assert min_cosine(result.output.main, source, held_out((1, 32, 128), 6)) > FLOOR


def test_without_a_sample_the_share_is_a_count_of_layers(
    recognizer: tuple[Path, float], tmp_path: Path
) -> None:
    """No dataset and a free height and width: no multiply-add share is claimed at all."""
    source, _ = recognizer
    result = run_local("quantize.dynamic", source, output_dir=tmp_path / "out")

    d = result.details
    assert d["conv_mac_share"] is None
    assert d["compute"]["counted"] == "layers"
    assert (d["compute"]["conv_layers"], d["compute"]["layers"]) == (3, 5)
    warning = next(note for note in result.notes if "ConvInteger" in note)
    assert "3 of the 5 weighted layers are convolutions" in warning and "%" not in warning


def test_with_a_sample_dynamic_states_the_measured_share(
    recognizer: tuple[Path, float], lines: DatasetSpec, tmp_path: Path
) -> None:
    source, share = recognizer
    result = run_local("quantize.dynamic", source, dataset=lines, output_dir=tmp_path / "out")

    assert result.details["conv_mac_share"] == pytest.approx(share, abs=0.01)
    assert any(f"convolutions hold {share:.0%} of the multiply-adds" in note for note in result.notes)


def test_an_unchanged_model_gets_no_speed_up(images: DatasetSpec, tmp_path: Path) -> None:
    """Every weighted layer excluded: there is no int8 model to time, so there is no result."""
    source = conv_net(tmp_path / "net.onnx")
    names = [n.name for n in onnx.load(str(source)).graph.node if n.op_type in ("Conv", "Gemm")]
    out = tmp_path / "out"
    with pytest.raises(ParameterError, match="nothing to quantize"):
        run_local("quantize.auto", source, dataset=images, params={"nodes_to_exclude": names}, output_dir=out)
    assert not any(out.glob("*.onnx"))
