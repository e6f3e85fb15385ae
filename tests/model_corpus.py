"""Small models in the shapes real third-party models have and the demo lacks, each built here.

Each entry writes a model file (and, for an architecture file, its weights) plus a labelled
dataset whose arrays fit the model's inputs, into a folder. Shared by the corpus test and
``tests/benchmarks/bench_corpus.py``, which runs every technique on every entry.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLES = 400  # the step keeps 20 % of the 80 % it sees to judge a search on: 64 samples


@dataclass(frozen=True)
class Made:
    model: Path
    weights: Path | None
    dataset: Path
    input_shape: tuple[int, ...] | None = None  # for formats that do not record it
    # The true counts, found without the studio (a torch module's numel() and hooks, or the arrays
    # written here): learned values, and MACs for one sample of the dataset's size.
    params: int | None = None
    macs: int | None = None
    input_roles: dict[str, str] | None = None  # what the user gives at import (--input-spec)

    def import_into(self, project, *, at_sample_size: bool = False, name: str | None = None):
        """The model as a version of ``project``, trusted (the corpus's own files), given what a
        user gives: the shape a format cannot record, or (``at_sample_size``) one sample of the
        dataset's size, which ``params`` and ``macs`` are for."""
        if at_sample_size:
            shapes = counting_shapes(self)
        else:
            shapes = None if self.input_shape is None else [self.input_shape]
        return project.import_model(
            self.model,
            name=name,
            weights=self.weights,
            trust=True,
            input_shapes=shapes,
            input_roles=self.input_roles,
        )


TOLERANCE = 0.01  # a count agrees with the independent one within 1 %


def counting_shapes(made: Made) -> list[tuple[int, ...]]:
    """One full shape per input, batch 1, for the size ``Made.macs`` is for: the shape given for a
    format that does not record one, else one sample of each of the dataset's input arrays."""
    if made.input_shape is not None:
        return [made.input_shape]
    with np.load(made.dataset) as data:
        return [(1, *data[key].shape[1:]) for key in data.files if key != "y"]


def count_problem(found: int | None, truth: int | None) -> str | None:
    """What is wrong with a count the studio gave, judged against the independent one; None if
    nothing. "Unknown" (None) is an honest answer; 0, a negative count or one more than 1 % off
    is not (a 0 reads as "free")."""
    if found is None:
        return None
    if found < 0 or (found == 0 and truth != 0):
        return f"{found}, never a count"
    if truth is None:
        return None
    if abs(found - truth) > TOLERANCE * truth:
        return f"{found} where {truth} is true"
    return None


def _dataset(folder: Path, arrays: dict[str, np.ndarray], classes: int) -> Path:
    rng = np.random.default_rng(7)
    path = folder / "data.npz"
    np.savez(path, **arrays, y=rng.integers(0, classes, SAMPLES))
    return path


def _images(shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(3).standard_normal((SAMPLES, *shape)).astype(np.float32)


def _cnn(classes: int = 5):
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(16, classes),
    ).eval()


def _torch_counts(module, shape: tuple[int, ...], matmul_macs: int = 0) -> tuple[int, int]:
    """(parameters, MACs for one sample of ``shape``) of a torch module, counted by torch itself.

    Parameters are ``numel()``; MACs come from forward hooks on every Conv2d (output elements ×
    C_in / groups × kernel) and Linear (output elements × in_features), plus ``matmul_macs`` for
    the products a module computes outside such layers (attention's), counted by the caller.
    """
    import torch

    macs = matmul_macs

    def hook(layer, _inputs, output) -> None:
        nonlocal macs
        if isinstance(layer, torch.nn.Conv2d):
            per_output = layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
        else:
            per_output = layer.in_features
        macs += output.numel() // output.shape[0] * per_output

    dense = (torch.nn.Conv2d, torch.nn.Linear)
    hooks = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, dense)]
    try:
        with torch.no_grad():
            module(torch.zeros(1, *shape[1:]))
    finally:
        for handle in hooks:
            handle.remove()
    return sum(p.numel() for p in module.parameters()), macs


def _export(
    module, path: Path, shape: tuple[int, ...], *, opset: int = 17, dynamic: dict | None = None
) -> Path:
    import torch

    torch.onnx.export(
        module,
        (torch.randn(*shape),),
        str(path),
        input_names=["input"],
        output_names=["output"],
        opset_version=opset,
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}} if dynamic is None else dynamic,
        dynamo=False,
    )
    return path


def opset11_cnn(folder: Path) -> Made:
    """An older export: opset 11, where per-channel QDQ needs a newer opset."""
    model = _export(_cnn(), folder / "opset11.onnx", (1, 3, 16, 16), opset=11)
    params, macs = _torch_counts(_cnn(), (1, 3, 16, 16))
    return Made(model, None, _dataset(folder, {"input": _images((3, 16, 16))}, 5), params=params, macs=macs)


def fixed_batch_cnn(folder: Path) -> Made:
    """Exported for batches of exactly one."""
    model = _export(_cnn(), folder / "fixed.onnx", (1, 3, 16, 16), dynamic={})
    params, macs = _torch_counts(_cnn(), (1, 3, 16, 16))
    return Made(model, None, _dataset(folder, {"input": _images((3, 16, 16))}, 5), params=params, macs=macs)


def dynamic_size_cnn(folder: Path) -> Made:
    """An OCR-style convolutional network whose height and width are free."""
    dynamic = {"input": {0: "batch", 2: "height", 3: "width"}, "output": {0: "batch"}}
    model = _export(_cnn(), folder / "dynamic.onnx", (1, 3, 16, 16), dynamic=dynamic)
    params, macs = _torch_counts(_cnn(), (1, 3, 16, 16))
    return Made(model, None, _dataset(folder, {"input": _images((3, 16, 16))}, 5), params=params, macs=macs)


def ir3_initializers_as_inputs(folder: Path) -> Made:
    """An old model-zoo export: IR version 3, every initializer also listed as a graph input."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    w1 = numpy_helper.from_array(rng.standard_normal((16, 12)).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(np.zeros(16, np.float32), "b1")
    w2 = numpy_helper.from_array(rng.standard_normal((4, 16)).astype(np.float32), "w2")
    b2 = numpy_helper.from_array(np.zeros(4, np.float32), "b2")
    inits = [w1, b1, w2, b2]
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["input", "w1", "b1"], ["h"], transB=1),
            helper.make_node("Relu", ["h"], ["r"]),
            helper.make_node("Gemm", ["r", "w2", "b2"], ["output"], transB=1),
        ],
        "ir3",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 12])]
        + [helper.make_tensor_value_info(t.name, TensorProto.FLOAT, list(t.dims)) for t in inits],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 4])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    model.ir_version = 3
    path = folder / "ir3.onnx"
    onnx.save(model, str(path))
    x = np.random.default_rng(2).standard_normal((SAMPLES, 12)).astype(np.float32)
    params = sum(int(numpy_helper.to_array(t).size) for t in inits)
    return Made(path, None, _dataset(folder, {"input": x}, 4), params=params, macs=12 * 16 + 16 * 4)


class _TinyEncoder:
    """Self-attention and a feed-forward block over 8 tokens of width 32, as an encoder layer is."""

    @staticmethod
    def build():
        import torch

        class Encoder(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.q, self.k, self.v, self.o = (torch.nn.Linear(32, 32) for _ in range(4))
                self.norm = torch.nn.LayerNorm(32)
                self.up, self.down = torch.nn.Linear(32, 64), torch.nn.Linear(64, 32)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                scores = self.q(x) @ self.k(x).transpose(1, 2) / 32**0.5
                h = self.norm(x + self.o(torch.softmax(scores, dim=-1) @ self.v(x)))
                return h + self.down(torch.relu(self.up(h)))

        torch.manual_seed(0)
        return Encoder().eval()


def small_encoder(folder: Path) -> Made:
    """A transformer encoder layer giving one embedding per token: no class scores."""
    dynamic = {"input": {0: "batch"}, "output": {0: "batch"}}
    model = _export(_TinyEncoder.build(), folder / "encoder.onnx", (1, 8, 32), dynamic=dynamic)
    x = np.random.default_rng(4).standard_normal((SAMPLES, 8, 32)).astype(np.float32)
    attention = 8 * 32 * 8 + 8 * 8 * 32  # q @ kᵀ, then the scores @ v: 8 tokens of width 32
    params, macs = _torch_counts(_TinyEncoder.build(), (1, 8, 32), matmul_macs=attention)
    return Made(model, None, _dataset(folder, {"input": x}, 2), params=params, macs=macs)


_TWO_HEADS = textwrap.dedent(
    """
    import torch

    INPUT_SHAPE = (1, 3, 16, 16)


    class TwoHeads(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.trunk = torch.nn.Sequential(
                torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(),
                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
            )
            self.classes = torch.nn.Linear(16, 2)
            self.box = torch.nn.Linear(16, 4)

        def forward(self, x):
            features = self.trunk(x)
            return self.classes(features), self.box(features)


    def build_model():
        return TwoHeads()
    """
)


def two_heads(folder: Path) -> Made:
    """A detector-style network: a 2-way classifier and a box regressor on one trunk."""
    import torch
    from safetensors.torch import save_file

    source = folder / "two_heads.py"
    source.write_text(_TWO_HEADS)
    namespace: dict = {}
    exec(compile(_TWO_HEADS, str(source), "exec"), namespace)
    torch.manual_seed(0)
    module = namespace["build_model"]()
    weights = folder / "two_heads.safetensors"
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(weights))
    params, macs = _torch_counts(module, (1, 3, 16, 16))
    data = _dataset(folder, {"input": _images((3, 16, 16))}, 2)
    return Made(source, weights, data, params=params, macs=macs)


def scripted_cnn(folder: Path) -> Made:
    """A TorchScript archive: graph and weights, no Python modules."""
    import torch

    path = folder / "scripted.pt"
    torch.jit.save(torch.jit.trace(_cnn(), torch.randn(1, 3, 16, 16)), str(path))
    params, macs = _torch_counts(_cnn(), (1, 3, 16, 16))
    data = _dataset(folder, {"input": _images((3, 16, 16))}, 5)
    return Made(path, None, data, input_shape=(1, 3, 16, 16), params=params, macs=macs)


# -- where real files keep weights and sizes that the exports above do not -----------------------------


def _onnx_model(graph, path: Path, opset: int = 17) -> Path:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def _weights(seed: int, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.3 * rng.standard_normal(shape)).astype(np.float32) for shape in shapes]


def constant_node_cnn(folder: Path) -> Made:
    """A CNN whose weights are ``Constant`` nodes, not initializers, as some converters write them
    (the biases as ``value_floats`` lists, the kernels as tensors)."""
    from onnx import TensorProto, helper, numpy_helper

    w1, b1, w2, b2, w3, b3 = _weights(11, (8, 3, 3, 3), (8,), (16, 8, 3, 3), (16,), (5, 16), (5,))

    def constant(name: str, array: np.ndarray):
        if array.ndim == 1:
            return helper.make_node("Constant", [], [name], value_floats=array.tolist())
        return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array, name))

    nodes = [
        constant(n, a) for n, a in (("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2), ("w3", w3), ("b3", b3))
    ]
    nodes += [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w3", "b3"], ["output"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "constant_weights",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 5])],
    )
    path = _onnx_model(graph, folder / "constants.onnx")
    params = sum(a.size for a in (w1, b1, w2, b2, w3, b3))
    macs = 16 * 16 * 8 * (3 * 3 * 3) + 8 * 8 * 16 * (8 * 3 * 3) + 16 * 5  # conv, strided conv, Gemm
    return Made(path, None, _dataset(folder, {"input": _images((3, 16, 16))}, 5), params=params, macs=macs)


def _mlp_branch(name: str, arrays: list[np.ndarray], *, as_constants: bool):
    """``Gemm → Relu → Gemm`` on the outer scope's ``input``, its weights inside the branch."""
    from onnx import TensorProto, helper, numpy_helper

    names = [f"{name}_{part}" for part in ("w1", "b1", "w2", "b2")]
    tensors = [numpy_helper.from_array(a, n) for a, n in zip(arrays, names, strict=True)]
    nodes = [helper.make_node("Constant", [], [t.name], value=t) for t in tensors] if as_constants else []
    nodes += [
        helper.make_node("Gemm", ["input", names[0], names[1]], [f"{name}_h"], transB=1),
        helper.make_node("Relu", [f"{name}_h"], [f"{name}_r"]),
        helper.make_node("Gemm", [f"{name}_r", names[2], names[3]], [f"{name}_y"], transB=1),
    ]
    out = helper.make_tensor_value_info(f"{name}_y", TensorProto.FLOAT, None)
    return helper.make_graph(nodes, name, [], [out], [] if as_constants else tensors)


def if_branch_weights(folder: Path) -> Made:
    """Weights inside both branches of an ``If`` on the input's size, as scripted exports write
    them: initializers in one branch, Constant nodes in the other; the branches cost the same."""
    from onnx import TensorProto, helper, numpy_helper

    shapes = ((16, 12), (16,), (4, 16), (4,))
    then, other = _weights(12, *shapes), _weights(13, *shapes)
    nodes = [
        helper.make_node("Size", ["input"], ["size"]),
        helper.make_node("Greater", ["size", "zero"], ["any"]),
        helper.make_node(
            "If",
            ["any"],
            ["output"],
            then_branch=_mlp_branch("then", then, as_constants=False),
            else_branch=_mlp_branch("else", other, as_constants=True),
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "if_weights",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 12])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 4])],
        [numpy_helper.from_array(np.array(0, np.int64), "zero")],
    )
    path = _onnx_model(graph, folder / "if.onnx")
    x = np.random.default_rng(5).standard_normal((SAMPLES, 12)).astype(np.float32)
    params = sum(a.size for a in then + other)  # both branches' weights are the model's
    return Made(path, None, _dataset(folder, {"input": x}, 4), params=params, macs=12 * 16 + 16 * 4)


def constant_of_shape_bias(folder: Path) -> Made:
    """A bias of ones made by ``ConstantOfShape`` of a constant shape, added after a MatMul."""
    from onnx import TensorProto, helper, numpy_helper

    w1, w2, b2 = _weights(14, (12, 16), (4, 16), (4,))
    nodes = [
        helper.make_node(
            "ConstantOfShape",
            ["bias_shape"],
            ["ones"],
            value=helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0]),
        ),
        helper.make_node("MatMul", ["input", "w1"], ["h"]),
        helper.make_node("Add", ["h", "ones"], ["biased"]),
        helper.make_node("Relu", ["biased"], ["r"]),
        helper.make_node("Gemm", ["r", "w2", "b2"], ["output"], transB=1),
    ]
    inits = [numpy_helper.from_array(np.array([16], np.int64), "bias_shape")]
    inits += [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (w2, "w2"), (b2, "b2"))]
    graph = helper.make_graph(
        nodes,
        "constant_of_shape",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 12])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 4])],
        inits,
    )
    path = _onnx_model(graph, folder / "constant_of_shape.onnx")
    x = np.random.default_rng(6).standard_normal((SAMPLES, 12)).astype(np.float32)
    params = w1.size + 16 + w2.size + b2.size  # the ones are a bias: 16 values
    return Made(path, None, _dataset(folder, {"input": x}, 4), params=params, macs=12 * 16 + 16 * 4)


def minus_one_batch_cnn(folder: Path) -> Made:
    """A CNN whose input is declared ``[-1, 3, "h", "w"]``: -1 written as a size, as some
    converters say "any batch"."""
    import onnx

    dynamic = {"input": {0: "batch", 2: "h", 3: "w"}, "output": {0: "batch"}}
    path = _export(_cnn(), folder / "minus_one.onnx", (1, 3, 16, 16), dynamic=dynamic)
    model = onnx.load(str(path))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[0].dim_value = -1
    dims[2].dim_param, dims[3].dim_param = "h", "w"
    onnx.save(model, str(path))
    shape = (3, 20, 12)  # neither square nor the export's size
    params, macs = _torch_counts(_cnn(), (1, *shape))
    return Made(path, None, _dataset(folder, {"input": _images(shape)}, 5), params=params, macs=macs)


def same_pad_conv():
    """A Conv2d with EfficientNet's "same" padding, worked out from the input's size at run time
    (exported as Shape → arithmetic → Pad → Conv)."""
    import torch
    import torch.nn.functional as F

    class SamePadConv(torch.nn.Conv2d):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            pads = []
            for size, kernel, stride in zip(
                x.shape[:-3:-1], self.kernel_size[::-1], self.stride[::-1], strict=True
            ):
                size = torch.as_tensor(size)
                out = torch.div(size + stride - 1, stride, rounding_mode="floor")
                pad = torch.clamp((out - 1) * stride + kernel - size, min=0)
                pads += [pad // 2, pad - pad // 2]
            return F.conv2d(
                F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups
            )

    return SamePadConv


class _SamePadding:
    """A block of same-padded convolutions, as EfficientNet's."""

    @staticmethod
    def build():
        import torch
        import torch.nn.functional as F

        SamePadConv = same_pad_conv()

        class Block(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.stem = SamePadConv(3, 16, 3, stride=2)
                self.depthwise = SamePadConv(16, 16, 5, stride=2, groups=16)
                self.project = torch.nn.Conv2d(16, 24, 1)
                self.head = torch.nn.Linear(24, 5)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                x = self.project(F.silu(self.depthwise(F.silu(self.stem(x)))))
                return self.head(x.mean((2, 3)))

        torch.manual_seed(0)
        return Block().eval()


def efficientnet_same_padding(folder: Path) -> Made:
    """An EfficientNet-style block: "same" padding computed from the input's shape (Shape →
    arithmetic → Pad → Conv), a depthwise convolution, free height and width."""
    import warnings

    dynamic = {"input": {0: "batch", 2: "height", 3: "width"}, "output": {0: "batch"}}
    with warnings.catch_warnings():  # the tracer warns about the shape arithmetic it records
        warnings.simplefilter("ignore")
        path = _export(_SamePadding.build(), folder / "same_padding.onnx", (1, 3, 19, 23), dynamic=dynamic)
    shape = (3, 19, 23)  # odd sides: the two sides' padding differs
    params, macs = _torch_counts(_SamePadding.build(), (1, *shape))
    return Made(path, None, _dataset(folder, {"input": _images(shape)}, 5), params=params, macs=macs)


def exported_program_cnn(folder: Path) -> Made:
    """A ``torch.export`` program (``.pt2``): a graph with its weights and example inputs, no
    Python modules, fixed at batch 1 as ``torch.export`` records it by default."""
    import torch

    module = _cnn()
    path = folder / "program.pt2"
    torch.export.save(torch.export.export(module, (torch.randn(1, 3, 16, 16),)), str(path))
    params, macs = _torch_counts(module, (1, 3, 16, 16))
    return Made(path, None, _dataset(folder, {"input": _images((3, 16, 16))}, 5), params=params, macs=macs)


class _Streaming:
    """A voice-activity-style network: a frame of 64 samples, a recurrent state [2, batch, 32]
    and the sample rate as a single number, as streaming audio models take them."""

    @staticmethod
    def build():
        import torch

        class Streaming(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.encode = torch.nn.Linear(64, 32)
                self.recur = torch.nn.Linear(32, 32)
                self.decide = torch.nn.Linear(32, 2)

            def forward(self, x: torch.Tensor, state: torch.Tensor, sr: torch.Tensor):
                h = torch.relu(self.encode(x)) * (sr.float() / 16000.0)
                state = torch.tanh(self.recur(h).unsqueeze(0) + state)
                return self.decide(state.mean(0)), state

        torch.manual_seed(0)
        return Streaming().eval()


def streaming_state_and_rate(folder: Path) -> Made:
    """Inputs that are not all batches: ``state``'s 2 is no batch size and ``sr`` no per-sample
    vector. The sample rate cannot be guessed, so the import names it: ``--input-spec sr=16000``."""
    import torch

    module = _Streaming.build()
    path = folder / "streaming.onnx"
    example = (torch.randn(1, 64), torch.zeros(2, 1, 32), torch.tensor(16000))
    torch.onnx.export(
        module,
        example,
        str(path),
        input_names=["input", "state", "sr"],
        output_names=["output", "state_out"],
        opset_version=17,
        dynamic_axes={
            "input": {0: "batch"},
            "state": {1: "batch"},
            "output": {0: "batch"},
            "state_out": {1: "batch"},
        },
        dynamo=False,
    )
    x = np.random.default_rng(5).standard_normal((SAMPLES, 64)).astype(np.float32)
    params = sum(p.numel() for p in module.parameters())
    macs = 64 * 32 + 32 * 32 + 32 * 2  # the three Linear layers, one frame
    return Made(
        path, None, _dataset(folder, {"input": x}, 2), params=params, macs=macs, input_roles={"sr": "16000"}
    )


# What every technique must do on every corpus model: "ok" (a result kept, its fidelity to the
# parent above the gate's floor on held-out samples) or the words its one-sentence refusal
# starts with. Anything else — a refusal where a result was due, a result where a refusal was,
# a changed interface, an unflagged collapse — is a regression.
TECHNIQUES = (
    "quantize.dynamic",
    "quantize.static",
    "quantize.fp16",
    "quantize.auto",
    "prune.magnitude",
    "prune.structured",
    "distill",
)
TECHNIQUE_PARAMS = {  # small settings: the models are small, and the verdict is what counts
    "quantize.dynamic": {},
    "quantize.static": {"calibration_samples": 32},
    "quantize.fp16": {},
    "quantize.auto": {"max_trials": 3},
    "prune.magnitude": {},
    "prune.structured": {"ratio": 0.25, "finetune_epochs": 1},
    "distill": {"epochs": 1},
}
_QUANTIZED = dict.fromkeys(TECHNIQUES[:4], "ok")
_NOT_TORCH = {
    "prune.magnitude": "prune.magnitude takes PyTorch models; this one is ONNX",
    "prune.structured": "prune.structured takes PyTorch models; this one is ONNX",
    "distill": "an ONNX teacher has no architecture to shrink",
}
_ONNX = {**_QUANTIZED, **_NOT_TORCH}
_AUTO_MISSES = {"quantize.auto": "no candidate met the tolerance"}  # random weights, 2 trials
_IN_BRANCHES = "found no MatMul/Gemm/Conv/ConvTranspose/Gather node with constant weights in this model"
EXPECTED: dict[str, dict[str, str]] = {
    "opset 11 CNN": _ONNX,
    "fixed batch 1 CNN": _ONNX,
    "free height/width CNN": _ONNX,
    "IR 3, initializers as inputs": _ONNX,
    "transformer encoder": _ONNX,
    "two heads (architecture .py)": dict.fromkeys(TECHNIQUES, "ok"),
    "TorchScript CNN": {
        **_QUANTIZED,
        "prune.magnitude": "prune.magnitude needs the model's Python modules",
        "prune.structured": "prune.structured needs the model's Python modules",
        "distill": "student=width needs the teacher as an architecture .py file",
    },
    "weights in Constant nodes": _ONNX,
    "weights inside If branches": {
        **_NOT_TORCH,
        "quantize.dynamic": "quantize.dynamic found no MatMul/Gemm",
        "quantize.static": f"quantize.static {_IN_BRANCHES}",
        "quantize.fp16": "ok",
        "quantize.auto": "quantize.auto found no MatMul",
    },
    "ConstantOfShape bias": {**_ONNX, **_AUTO_MISSES},
    "input [-1, 3, h, w]": _ONNX,
    "EfficientNet same padding": _ONNX,
    "state and sample-rate inputs": {**_ONNX, **_AUTO_MISSES},
    "torch.export program (.pt2)": {
        **_QUANTIZED,
        "prune.magnitude": "prune.magnitude needs the model's Python modules",
        "prune.structured": "prune.structured needs the model's Python modules",
        "distill": "student=width needs the teacher as an architecture .py file",
    },
}


def outcome_problem(name: str, technique: str, verdict: str, text: str) -> str | None:
    """How a pair's outcome differs from the expected one; None when it is as expected."""
    expected = EXPECTED[name][technique]
    if expected == "ok":
        return None if verdict == "ok" else f"expected a result, got {verdict}: {text}"
    if verdict != "refused" or not text.startswith(expected):
        return f"expected a refusal starting '{expected}', got {verdict}: {text}"
    return None


def run_pair(engine, version, technique: str, dataset: str) -> tuple[str, str]:
    """(verdict, what to show) for one technique on one model, run by the studio's engine as
    `studio optimize` runs it, then judged:

    - ok        the result passed the gate (its fidelity to the parent on held-out samples shown);
    - flagged   the result was kept, marked: its fidelity collapsed (exit code 3 on the command line);
    - refused   one sentence, nothing recorded;
    - BROKEN    a result kept with another interface than its parent, an unflagged collapse (the
                gate passed but an independent measurement, in a fresh job against the parent on
                the validation split, is below the floor), or an error that is not one sentence.
    """
    from studio.api import StudioError
    from studio.core.benchmark import BenchmarkSettings
    from studio.core.gate import AGREEMENT_FLOOR, COSINE_FLOOR

    try:
        outcome = engine.run_step(
            version, technique, TECHNIQUE_PARAMS[technique], dataset=dataset, measure=None
        )
    except StudioError as error:
        text = str(error)
        if "\n" in text.strip() or "Traceback" in text:
            return "BROKEN", f"not one sentence: {text.strip().splitlines()[-1][:120]}"
        return "refused", text
    new = outcome.version
    if _shapes_differ(version, new):
        return "BROKEN", f"interface changed: {new.outputs} vs {version.outputs}"
    gate = new.details.get("gate") or {}
    check = BenchmarkSettings(  # fidelity is the point here: the paired timing gets a second at most
        runtime="onnxruntime", batch=1, threads=1, warmup=1, min_runs=1, min_seconds=0, max_seconds=1.0
    )
    independent = engine.measure(new, dataset=dataset, settings=check, reference=version).fidelity or {}
    figure = _gate_text(gate)
    floor_hit = independent and (
        independent.get("cosine_min", 1.0) < COSINE_FLOOR
        and independent.get("argmax_agreement", 1.0) < AGREEMENT_FLOOR
    )
    if floor_hit and not gate.get("collapsed"):
        return "BROKEN", f"unflagged collapse: gate said {figure}, a fresh measurement {independent}"
    return ("flagged" if gate.get("collapsed") else "ok"), figure


def _shapes_differ(old, new) -> bool:
    def dims(specs):
        return [(s.name, [d if isinstance(d, int) and d > 0 else None for d in s.shape[1:]]) for s in specs]

    return dims(old.inputs) != dims(new.inputs) or dims(old.outputs) != dims(new.outputs)


def _gate_text(gate: dict) -> str:
    if not gate:
        return "no gate figures"
    value = f"{100 * gate['figure']:.1f} %" if gate["rule"] == "top-1 agreement" else f"{gate['figure']:.4f}"
    return f"{gate['rule']} {value} ({gate['samples']} held-out)"


CORPUS: dict[str, Callable[[Path], Made]] = {
    "opset 11 CNN": opset11_cnn,
    "fixed batch 1 CNN": fixed_batch_cnn,
    "free height/width CNN": dynamic_size_cnn,
    "IR 3, initializers as inputs": ir3_initializers_as_inputs,
    "transformer encoder": small_encoder,
    "two heads (architecture .py)": two_heads,
    "TorchScript CNN": scripted_cnn,
    "weights in Constant nodes": constant_node_cnn,
    "weights inside If branches": if_branch_weights,
    "ConstantOfShape bias": constant_of_shape_bias,
    "input [-1, 3, h, w]": minus_one_batch_cnn,
    "EfficientNet same padding": efficientnet_same_padding,
    "state and sample-rate inputs": streaming_state_and_rate,
    "torch.export program (.pt2)": exported_program_cnn,
}
