"""Each format module recognises its own files by content and no other format's.

The files are made here from one tiny module, the way a user would save them, and every file is
shown to every format's ``match``: exactly its own must say yes. Detection tries the formats in
a fixed order, so a ``match`` that also said yes to another format's file would hide a bug
behind that order.
"""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import onnx
import pytest
import torch

from studio.core.detection import collect_files
from studio.core.formats import (
    architecture,
    exported_program,
    onnx_format,
    pickled_module,
    safetensors_format,
    state_dict,
    torchscript,
)
from studio.core.formats.content import read_head
from studio.core.formats.kinds import Kind, identify
from studio.core.formats.registry import FORMATS

ARCHITECTURE = textwrap.dedent(
    """
    from torch import nn

    INPUT_SHAPE = (1, 4)


    def build_model():
        return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    """
)

# Each format module, the file made in its format, and the kind detection gives that file.
MODULES = {
    "onnx": (onnx_format, "tiny.onnx", Kind.ONNX),
    "torchscript": (torchscript, "tiny.ts.pt", Kind.TORCHSCRIPT),
    "exported_program": (exported_program, "tiny.pt2", Kind.EXPORTED_PROGRAM),
    "architecture": (architecture, "tiny_arch.py", Kind.PYTHON),
    "pickled_module": (pickled_module, "tiny_whole.pt", Kind.TORCH_PICKLE),
    "state_dict": (state_dict, "tiny_weights.pt", Kind.STATE_DICT),
    "safetensors": (safetensors_format, "tiny_arch.safetensors", Kind.SAFETENSORS),
}


def tiny() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2)).eval()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("formats")
    module, x = tiny(), torch.randn(1, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation notices for the writers used here
        torch.onnx.export(module, (x,), str(root / "tiny.onnx"), dynamo=False, input_names=["input"])
        torch.jit.save(torch.jit.trace(module, x), str(root / "tiny.ts.pt"))
        torch.export.save(torch.export.export(module, (x,)), str(root / "tiny.pt2"))
    (root / "tiny_arch.py").write_text(ARCHITECTURE)
    save_file(module.state_dict(), str(root / "tiny_arch.safetensors"))
    torch.save(module.state_dict(), root / "tiny_weights.pt")
    torch.save(module, root / "tiny_whole.pt")
    return root


@pytest.mark.parametrize("name", MODULES)
def test_each_format_matches_its_own_files_and_no_other(folder: Path, name: str) -> None:
    module, own, _ = MODULES[name]
    for _, path_name, _ in MODULES.values():
        path = folder / path_name
        assert module.match(path, read_head(path)) is (path_name == own), f"{name}.match({path_name})"


@pytest.mark.parametrize("name", MODULES)
def test_detection_gives_each_file_the_kind_of_its_format(folder: Path, name: str) -> None:
    _, path_name, kind = MODULES[name]
    assert identify(folder / path_name).kind is kind


@pytest.mark.parametrize(
    "name", ["onnx", "torchscript", "exported_program", "architecture", "pickled_module"]
)
def test_open_gives_one_normalized_model(folder: Path, name: str) -> None:
    _, path_name, _ = MODULES[name]
    weights = folder / "tiny_arch.safetensors" if name == "architecture" else None
    files = collect_files(folder / path_name, weights)
    model = FORMATS[files.format].open(files, trusted=True)
    if name == "onnx":
        assert isinstance(model, onnx.ModelProto)
    else:
        assert isinstance(model, torch.nn.Module)
        assert name == "exported_program" or not model.training  # a program refuses eval(); it needs none
        with torch.no_grad():
            assert tuple(model(torch.randn(1, 4)).shape) == (1, 2)


def test_only_a_plain_export_and_onnx_run_no_code(folder: Path) -> None:
    bearing = {
        name: FORMATS[files.format].runs_code(files)
        for name in ("onnx", "torchscript", "exported_program", "pickled_module")
        for files in [collect_files(folder / MODULES[name][1])]
    }
    assert bearing == {"onnx": False, "torchscript": True, "exported_program": False, "pickled_module": True}
