"""Fixtures for the distillation tests: teachers (a small CNN trained here, and the shipped
digits CNN for the slow tests), slices of the digits data, and student architecture files."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from studio.core.data import DatasetSpec, load_dataset
from studio.core.models import ModelFiles, collect_files
from studio.core.resources import resource
from studio.core.trust import grant

ARCHITECTURE = """
from torch import nn

INPUT_SHAPE = (1, {in_channels}, 28, 28)


def build_model():
    return nn.Sequential(
        nn.Conv2d({in_channels}, {channels}, 3, padding=1, bias=False),
        nn.BatchNorm2d({channels}),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d({channels}, {wide}, 3, padding=1, bias=False),
        nn.BatchNorm2d({wide}),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear({wide}, {classes}),
    )
"""


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Small models train faster on one thread, and far faster when other work shares the cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def digits_teacher() -> ModelFiles:
    """The shipped digits CNN as an architecture file with its weights (101 M multiply-adds)."""
    return collect_files(resource("demo", "digits_cnn.py"), resource("demo", "digits_cnn.safetensors"))


@pytest.fixture(scope="session")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> ModelFiles:
    """A small CNN trained briefly on the digits: a real teacher at a hundredth of the demo's cost."""
    import torch
    import torch.nn.functional as F  # noqa: N812
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("teacher")
    py = _write_architecture(folder, "teacher_cnn", in_channels=1, channels=16, classes=10)
    torch.manual_seed(0)
    module = _build(py)
    data = load_dataset("digits")
    x, y = torch.from_numpy(data.arrays["x"][:400]), torch.from_numpy(data.labels[:400])
    optimizer = torch.optim.Adam(module.parameters(), lr=0.01)
    for _ in range(15):
        for batch in torch.randperm(len(x)).split(50):
            optimizer.zero_grad()
            F.cross_entropy(module(x[batch]), y[batch]).backward()
            optimizer.step()
    for layer in module.modules():  # batch-norm statistics of the final weights, not a lagging average
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.reset_running_stats()
            layer.momentum = None
    with torch.no_grad():
        module(x)
    weights = folder / "teacher_cnn.weights.safetensors"
    save_file(module.state_dict(), str(weights))
    return collect_files(py, weights)


@pytest.fixture(scope="session")
def onnx_teacher(teacher: ModelFiles, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same small teacher exported to ONNX."""
    from studio.core.models import export_onnx, load_torch_module

    module = load_torch_module(teacher, trusted=True)
    path = tmp_path_factory.mktemp("onnx_teacher") / "teacher_cnn.onnx"
    import torch

    return export_onnx(module, (torch.zeros(1, 1, 28, 28),), path, input_names=["input"])


def _digits_slice(folder: Path, n: int, *, labels: bool = True) -> DatasetSpec:
    full = load_dataset("digits")
    arrays = {"x": full.arrays["x"][:n]}
    if labels:
        arrays["y"] = full.labels[:n]
    path = folder / f"digits_{n}{'' if labels else '_unlabelled'}.npz"
    np.savez(path, **arrays)
    return DatasetSpec(source=str(path))


@pytest.fixture
def small_digits(tmp_path: Path) -> DatasetSpec:
    """400 digits (320 train, 80 validation): enough to train on, small enough to be quick."""
    return _digits_slice(tmp_path, 400)


@pytest.fixture
def unlabelled_digits(tmp_path: Path) -> DatasetSpec:
    return _digits_slice(tmp_path, 400, labels=False)


@pytest.fixture
def tiny_digits(tmp_path: Path) -> DatasetSpec:
    """30 samples: 24 to train on, too few to distil with."""
    return _digits_slice(tmp_path, 30)


@pytest.fixture
def write_student(tmp_path: Path) -> Callable[..., ModelFiles]:
    """A trusted student architecture file with seeded random weights beside it."""

    def write(
        name: str = "student", *, in_channels: int = 1, channels: int = 8, classes: int = 10
    ) -> ModelFiles:
        import torch
        from safetensors.torch import save_file

        folder = tmp_path / name
        folder.mkdir()
        py = _write_architecture(folder, name, in_channels=in_channels, channels=channels, classes=classes)
        torch.manual_seed(0)
        weights = folder / "weights.safetensors"
        save_file(_build(py).state_dict(), str(weights))
        files = collect_files(py, weights)
        grant(files)
        return files

    return write


def _write_architecture(folder: Path, name: str, **sizes: int) -> Path:
    py = folder / f"{name}.py"
    source = ARCHITECTURE.format(wide=2 * sizes["channels"], **sizes)
    py.write_text(textwrap.dedent(source), encoding="utf-8")
    return py


def _build(py: Path):
    namespace: dict = {}
    exec(compile(py.read_text(encoding="utf-8"), str(py), "exec"), namespace)
    return namespace["build_model"]()


@pytest.fixture
def versions() -> Callable[[dict[str, ModelFiles]], Callable[[str], tuple[ModelFiles, None]]]:
    """A ``resolve`` callback standing for a project's versions, by name."""

    def make(known: dict[str, ModelFiles]) -> Callable[[str], tuple[ModelFiles, None]]:
        def resolve(ref: str) -> tuple[ModelFiles, None]:
            from studio.api import ParameterError

            if ref not in known:
                raise ParameterError(f"there is no version '{ref}' in this project")
            return known[ref], None

        return resolve

    return make
