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

SAMPLES = 160


@dataclass(frozen=True)
class Made:
    model: Path
    weights: Path | None
    dataset: Path
    input_shape: tuple[int, ...] | None = None  # for formats that do not record it


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
    return Made(model, None, _dataset(folder, {"input": _images((3, 16, 16))}, 5))


def fixed_batch_cnn(folder: Path) -> Made:
    """Exported for batches of exactly one."""
    model = _export(_cnn(), folder / "fixed.onnx", (1, 3, 16, 16), dynamic={})
    return Made(model, None, _dataset(folder, {"input": _images((3, 16, 16))}, 5))


def dynamic_size_cnn(folder: Path) -> Made:
    """An OCR-style convolutional network whose height and width are free."""
    dynamic = {"input": {0: "batch", 2: "height", 3: "width"}, "output": {0: "batch"}}
    model = _export(_cnn(), folder / "dynamic.onnx", (1, 3, 16, 16), dynamic=dynamic)
    return Made(model, None, _dataset(folder, {"input": _images((3, 16, 16))}, 5))


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
    return Made(path, None, _dataset(folder, {"input": x}, 4))


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
    return Made(model, None, _dataset(folder, {"input": x}, 2))


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
    return Made(source, weights, _dataset(folder, {"input": _images((3, 16, 16))}, 2))


def scripted_cnn(folder: Path) -> Made:
    """A TorchScript archive: graph and weights, no Python modules."""
    import torch

    path = folder / "scripted.pt"
    torch.jit.save(torch.jit.trace(_cnn(), torch.randn(1, 3, 16, 16)), str(path))
    return Made(path, None, _dataset(folder, {"input": _images((3, 16, 16))}, 5), input_shape=(1, 3, 16, 16))


CORPUS: dict[str, Callable[[Path], Made]] = {
    "opset 11 CNN": opset11_cnn,
    "fixed batch 1 CNN": fixed_batch_cnn,
    "free height/width CNN": dynamic_size_cnn,
    "IR 3, initializers as inputs": ir3_initializers_as_inputs,
    "transformer encoder": small_encoder,
    "two heads (architecture .py)": two_heads,
    "TorchScript CNN": scripted_cnn,
}
