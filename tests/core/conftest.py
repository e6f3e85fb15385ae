"""A corpus of model files, good and bad, built once per test session from real torch modules.

Like Netron's test/models.json: every good file must load, inspect and run; every bad file is
paired (in the tests) with the one sentence it must produce.
"""

from __future__ import annotations

import shutil
import textwrap
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import external_data_helper

INPUT_SHAPE = (1, 3, 8, 8)

# The architecture file as a user would write it: self-contained, with build_model() and a shape.
ARCH_SOURCE = textwrap.dedent(
    """
    import torch
    from torch import nn

    INPUT_SHAPE = (1, 3, 8, 8)


    class SmallCNN(nn.Module):
        def __init__(self, classes: int = 10):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, kernel_size=3, padding=1)
            self.relu = nn.ReLU()
            self.pool = nn.MaxPool2d(2)
            self.fc = nn.Linear(8 * 4 * 4, classes)

        def forward(self, x):
            x = self.pool(self.relu(self.conv(x)))
            return self.fc(torch.flatten(x, 1))


    def build_model():
        return SmallCNN()
    """
)

# An architecture whose inputs are token ids, declared through example_inputs().
EMBEDDING_SOURCE = textwrap.dedent(
    """
    import torch
    from torch import nn


    class Bag(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(50, 4)
            self.fc = nn.Linear(4, 3)

        def forward(self, ids):
            return self.fc(self.emb(ids).mean(dim=1))


    def build_model():
        return Bag()


    def example_inputs():
        return torch.zeros(2, 6, dtype=torch.int64)
    """
)


def build_namespace(source: str) -> dict:
    namespace: dict = {}
    exec(compile(source, "<architecture>", "exec"), namespace)
    return namespace


def small_cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_namespace(ARCH_SOURCE)["build_model"]().eval()


def cnn_sequential() -> torch.nn.Sequential:
    """The same network from torch's own classes, so a whole-module pickle can be loaded back."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, kernel_size=3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 4 * 4, 10),
    ).eval()


def example_input(batch: int = 1) -> torch.Tensor:
    return torch.randn(batch, *INPUT_SHAPE[1:], generator=torch.Generator().manual_seed(1))


@dataclass
class Corpus:
    root: Path
    module: torch.nn.Module  # the reference every good file was made from
    input_shape: tuple[int, ...] = INPUT_SHAPE

    def __getattr__(self, name: str) -> Path:
        if name not in _FILES:
            raise AttributeError(name)
        return self.root / _FILES[name]

    def example(self, batch: int = 1) -> torch.Tensor:
        return example_input(batch)

    def reference(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.module(torch.from_numpy(x)).numpy()


_FILES = {
    "onnx": "cnn.onnx",
    "onnx_external": "external/cnn.onnx",
    "torchscript": "cnn.ts.pt",
    "exported_program": "cnn.pt2",
    "exported_static": "cnn_static.pt2",
    "arch": "arch/cnn_arch.py",
    "arch_weights": "arch/cnn_weights.pt",
    "arch_safetensors": "arch/cnn_weights.safetensors",
    "arch_checkpoint": "arch/checkpoint.pt",
    "wrong_weights": "arch/wrong_weights.pt",
    "embedding_arch": "embedding/bag.py",
    "embedding_weights": "embedding/bag.pt",
    "pickle": "cnn_whole.pt",
    "empty": "bad/empty.onnx",
    "truncated": "bad/truncated.onnx",
    "random": "bad/random.onnx",
    "zip_named_onnx": "bad/really_a_zip.onnx",
    "random_bin": "bad/noise.bin",
    "text": "bad/notes.txt",
    "plain_zip": "bad/archive.zip",
    "escape": "escape/cnn.onnx",
    "absolute": "absolute/cnn.onnx",
    "missing_data": "missing_data/cnn.onnx",
    "no_build_model": "bad/no_build.py",
    "broken_python": "bad/broken.py",
    "unknown_op": "bad/unknown_op.onnx",
    "damaged_data": "damaged_data/cnn.onnx",
    "folder": "bad",
}


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    root = tmp_path_factory.mktemp("corpus")
    c = Corpus(root, small_cnn())
    for name in (
        "external",
        "arch",
        "embedding",
        "bad",
        "escape",
        "absolute",
        "missing_data",
        "damaged_data",
    ):
        (root / name).mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation notices for the exporters used here
        _write_onnx_files(c)
        _write_torch_files(c)
        _write_architectures(c)
        _write_bad_files(c)
        _write_bad_external_data(c)
    return c


def _write_onnx_files(c: Corpus) -> None:
    torch.onnx.export(
        c.module,
        (example_input(),),
        str(c.onnx),
        dynamo=False,
        input_names=["input"],
        output_names=["output"],
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
    )
    _save_with_external_data(onnx.load(str(c.onnx)), c.onnx_external, "weights.bin")


def _save_with_external_data(model: onnx.ModelProto, path: Path, location: str) -> None:
    """What onnx.save_model(save_as_external_data=True) writes, without its check of the current folder."""
    with open(path.parent / location, "wb") as data:
        for tensor in model.graph.initializer:
            offset = data.tell()
            data.write(tensor.raw_data)
            external_data_helper.set_external_data(
                tensor, location, offset=offset, length=len(tensor.raw_data)
            )
            tensor.data_location = onnx.TensorProto.EXTERNAL
            tensor.ClearField("raw_data")
    path.write_bytes(model.SerializeToString())


def _write_torch_files(c: Corpus) -> None:
    x = example_input()
    torch.jit.save(torch.jit.trace(c.module, x), str(c.torchscript))
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(c.module, (example_input(2),), dynamic_shapes={"x": {0: batch}})
    torch.export.save(program, str(c.exported_program))
    torch.export.save(torch.export.export(c.module, (x,)), str(c.exported_static))
    whole = cnn_sequential()
    whole.load_state_dict(_as_sequential_state(c.module.state_dict()))
    torch.save(whole, c.pickle)


def _as_sequential_state(state: dict) -> dict:
    rename = {"conv": "0", "fc": "4"}
    return {f"{rename[k.split('.')[0]]}.{k.split('.', 1)[1]}": v for k, v in state.items()}


def _write_architectures(c: Corpus) -> None:
    from safetensors.torch import save_file

    c.arch.write_text(ARCH_SOURCE)
    state = c.module.state_dict()
    torch.save(state, c.arch_weights)
    save_file(state, str(c.arch_safetensors))
    torch.save({"epoch": 3, "state_dict": state}, c.arch_checkpoint)
    wrong = torch.nn.Linear(128, 5).state_dict()
    torch.save({**state, "fc.weight": wrong["weight"], "extra.bias": wrong["bias"]}, c.wrong_weights)
    c.embedding_arch.write_text(EMBEDDING_SOURCE)
    torch.manual_seed(0)
    torch.save(build_namespace(EMBEDDING_SOURCE)["build_model"]().state_dict(), c.embedding_weights)


def _write_bad_files(c: Corpus) -> None:
    c.empty.write_bytes(b"")
    data = c.onnx.read_bytes()
    c.truncated.write_bytes(data[: len(data) // 2])
    noise = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    c.random.write_bytes(b"\xff" + noise)
    c.random_bin.write_bytes(b"\xff" + noise)
    shutil.copy(c.torchscript, c.zip_named_onnx)
    c.text.write_text("These are notes about the model, not a model.\n")
    with zipfile.ZipFile(c.plain_zip, "w") as archive:
        archive.writestr("readme.txt", "hello")
    c.no_build_model.write_text("import torch\n\nINPUT_SHAPE = (1, 3)\n")
    c.broken_python.write_text("def build_model(:\n    pass\n")
    model = onnx.load(str(c.onnx))
    model.graph.node[1].op_type = "NoSuchOperator"
    onnx.save_model(model, str(c.unknown_op))


def _write_bad_external_data(c: Corpus) -> None:
    """ONNX files whose external-data locations point where they must not."""
    secret = c.root / "secret.bin"
    secret.write_bytes(b"\0" * 4096)
    cases = {c.escape: "../secret.bin", c.absolute: str(secret), c.missing_data: "gone.bin"}
    for path, location in cases.items():
        model = onnx.load(str(c.onnx))
        for tensor in model.graph.initializer:
            external_data_helper.set_external_data(tensor, location=location)
            tensor.data_location = onnx.TensorProto.EXTERNAL
            tensor.ClearField("raw_data")
        path.write_bytes(model.SerializeToString())  # only the header: no data is written anywhere
    shutil.copytree(c.onnx_external.parent, c.damaged_data.parent, dirs_exist_ok=True)
    data = c.damaged_data.parent / "weights.bin"
    data.write_bytes(data.read_bytes()[:100])
