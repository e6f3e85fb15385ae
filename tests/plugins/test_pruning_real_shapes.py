"""Pruning on the shapes real models have: several heads, dict outputs, compiled archives, a batch
fixed at one. Every model here is built and pruned for real; a result keeps every output's shape
or the run is refused in one sentence, leaving nothing behind."""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.api import ParameterError
from studio.core.data import DatasetSpec, step_part
from studio.core.models import ModelFiles, collect_files, load_torch_module
from studio.core.techniques import run_local
from studio.core.torch_structure import build_fresh

# A shared trunk with a 2-way classifier and a 4-value box regressor, each behind an activation:
# the class head is neither returned as it is nor the last layer to run.
TWO_HEADS = """
import torch
from torch import nn

INPUT_SHAPE = (1, 3, 16, 16)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.cls = nn.Linear(16, 2)
        self.box = nn.Linear(16, 4)

    def forward(self, x):
        f = self.trunk(x)
        return torch.softmax(self.cls(f), dim=1), torch.sigmoid(self.box(f))


def build_model():
    return Net()
"""

# Outputs in a dict, one reshaped after its layer: the names and the non-batch dims must survive.
DICT_HEADS = """
from torch import nn

INPUT_SHAPE = (1, 3, 16, 16)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))
        self.scores = nn.Conv2d(8, 2, 1)
        self.boxes = nn.Linear(8, 4)

    def forward(self, x):
        f = self.trunk(x).relu()
        return {"scores": self.scores(f).mean(dim=(2, 3)), "boxes": self.boxes(f.mean(dim=(2, 3))).view(-1, 2, 2)}


def build_model():
    return Net()
"""

# A features output taken off the graph with detach(): nothing links it to the layer that sets
# its width, so only the check of the result's outputs can notice that pruning narrowed it.
DETACHED_FEATURES = """
from torch import nn

INPUT_SHAPE = (1, 3, 16, 16)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.cls = nn.Linear(16, 2)

    def forward(self, x):
        f = self.trunk(x)
        return self.cls(f), f.detach()


def build_model():
    return Net()
"""

# Exported for batch 1: the flatten is written for one sample, as in many deployed models.
BATCH_OF_ONE = """
from torch import nn

INPUT_SHAPE = (1, 1, 8, 8)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(2)
        )
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        return self.head(self.features(x).view(1, -1))


def build_model():
    return Net()
"""


def write_model(folder: Path, source: str, *, weak_channels: bool = False) -> ModelFiles:
    """An architecture file and its safetensors weights, as a user imports them.

    ``weak_channels`` gives every convolution a strong and a weak half of its filters (as training
    leaves them), so pruning half the channels by magnitude keeps what the model computes.
    """
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    arch = folder / "net.py"
    arch.write_text(textwrap.dedent(source), encoding="utf-8")
    torch.manual_seed(0)
    module = build_fresh(arch)
    if weak_channels:
        with torch.no_grad():
            for layer in module.modules():
                if isinstance(layer, (torch.nn.Conv2d, torch.nn.BatchNorm2d)):
                    half = layer.weight.shape[0] // 2
                    layer.weight[half:] *= 0.01
                    layer.bias[half:] *= 0.01
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(folder / "net.safetensors"))
    return collect_files(arch, weights=folder / "net.safetensors")


def shapes(result) -> list[tuple[str, tuple[int, ...]]]:
    """Every output of a forward pass with its place: tuples by index, dicts by key."""
    if isinstance(result, dict):
        return [(k, tuple(v.shape)) for k, v in result.items()]
    if isinstance(result, (tuple, list)):
        return [(str(i), tuple(v.shape)) for i, v in enumerate(result)]
    return [("", tuple(result.shape))]


def reload(main: Path) -> torch.nn.Module:
    return load_torch_module(collect_files(main), trusted=True).eval()


def prune(technique: str, files: ModelFiles | Path, out: Path, dataset=None, **params):
    return run_local(technique, files, params=params, dataset=dataset, output_dir=out, trusted=True)


def refused(technique: str, files: ModelFiles | Path, out: Path, **params) -> str:
    with pytest.raises(ParameterError) as caught:
        prune(technique, files, out, **params)
    assert not out.exists() or not any(out.iterdir()), "a refused run must leave nothing behind"
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_structured_pruning_keeps_both_heads_and_what_they_compute(tmp_path: Path) -> None:
    files = write_model(tmp_path / "model", TWO_HEADS, weak_channels=True)
    result = prune("prune.structured", files, tmp_path / "out", ratio=0.5)

    original, pruned = load_torch_module(files, trusted=True).eval(), reload(result.output.main)
    assert pruned.trunk[0].out_channels == 4 and pruned.trunk[3].out_channels == 8
    assert (pruned.cls.out_features, pruned.box.out_features) == (2, 4)
    assert sorted(result.details["kept_layers"]) == ["box", "cls"]
    x = torch.randn(6, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before, after = original(x), pruned(x)
    assert shapes(after) == shapes(before) == [("0", (6, 2)), ("1", (6, 4))]
    for old, new in zip(before, after, strict=True):  # the weak half went, what the heads say stays
        assert np.corrcoef(old.flatten().numpy(), new.flatten().numpy())[0, 1] > 0.95


def test_structured_pruning_keeps_dict_outputs_and_their_reshape(tmp_path: Path) -> None:
    files = write_model(tmp_path / "model", DICT_HEADS)
    result = prune("prune.structured", files, tmp_path / "out", ratio=0.5)

    pruned = reload(result.output.main)
    assert pruned.trunk[0].out_channels == 4
    with torch.no_grad():
        got = pruned(torch.randn(3, 3, 16, 16))
    assert shapes(got) == [("scores", (3, 2)), ("boxes", (3, 2, 2))]


def test_a_changed_output_is_refused_before_it_is_saved(tmp_path: Path) -> None:
    files = write_model(tmp_path / "model", DETACHED_FEATURES)
    message = refused("prune.structured", files, tmp_path / "out", ratio=0.5)
    assert message == (
        "the pruned model gives output[1] of shape (1, 8) where the input model gives (1, 16); "
        "name the layer that makes that output in keep_layers"
    )
    result = prune("prune.structured", files, tmp_path / "kept", ratio=0.5, keep_layers=["trunk.2"])
    with torch.no_grad():
        got = reload(result.output.main)(torch.randn(2, 3, 16, 16))
    assert shapes(got) == [("0", (2, 2)), ("1", (2, 16))]


def _compiled(tmp_path: Path, kind: str) -> Path:
    """The two-head model as a TorchScript archive or a torch.export program."""
    module = load_torch_module(write_model(tmp_path / "model", TWO_HEADS), trusted=True).eval()
    example = (torch.randn(1, 3, 16, 16),)
    if kind == "torchscript":
        path = tmp_path / "net.pt"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # tracing is deprecated, archives live on
            torch.jit.trace(module, example).save(str(path))
    else:
        path = tmp_path / "net.pt2"
        torch.export.save(torch.export.export(module, example), str(path))
    return path


@pytest.mark.parametrize("technique", ["prune.magnitude", "prune.structured"])
@pytest.mark.parametrize(
    ("kind", "carries"),
    [
        ("torchscript", "a TorchScript archive carries only its compiled graph"),
        ("export", "a torch.export program (.pt2) carries only its graph"),
    ],
)
def test_compiled_models_are_refused_for_what_they_lack(
    tmp_path: Path, technique: str, kind: str, carries: str
) -> None:
    message = refused(technique, _compiled(tmp_path, kind), tmp_path / "out")
    assert message == (
        f"{technique} needs the model's Python modules; {carries}: import the architecture file "
        "(.py with build_model()) and its weights instead"
    )


@pytest.mark.parametrize("technique", ["prune.magnitude", "prune.structured"])
def test_a_pickled_module_is_refused_before_work_it_could_not_save(tmp_path: Path, technique: str) -> None:
    path = tmp_path / "net.pt"
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 2, 1)), path)
    message = refused(technique, path, tmp_path / "out")
    assert message == (
        f"{technique} saves its result next to the model's architecture file, and net.pt is a pickled "
        "module without one: import the architecture file (.py with build_model()) and its weights instead"
    )


@pytest.fixture
def quadrants(tmp_path: Path) -> DatasetSpec:
    """8×8 images whose class is the brightest quadrant, with labels."""
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 0.3, size=(60, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 4, size=60)
    for i, label in enumerate(y):
        r, c = divmod(int(label), 2)
        x[i, 0, r * 4 : r * 4 + 4, c * 4 : c * 4 + 4] += 1.0
    path = tmp_path / "quadrants.npz"
    np.savez(path, x=x, y=y.astype(np.int64))
    return DatasetSpec(source=str(path))


def _top1_one_at_a_time(module: torch.nn.Module, dataset: DatasetSpec) -> float:
    validation = step_part(dataset.load()).split("validation")
    with torch.no_grad():
        predicted = [int(module(torch.from_numpy(x[None])).argmax()) for x in validation.arrays["x"]]
    return float((np.array(predicted) == validation.labels).mean())


def test_structured_pruning_fine_tunes_a_batch_of_one_model_one_sample_at_a_time(
    tmp_path: Path, quadrants: DatasetSpec
) -> None:
    files = write_model(tmp_path / "model", BATCH_OF_ONE)
    result = prune("prune.structured", files, tmp_path / "out", quadrants, ratio=0.5, finetune_epochs=1)

    d = result.details
    assert d["batch"] == 1 and len(d["finetune"]) == 1 and d["finetune"][0]["loss"] > 0
    assert any("exactly 1 sample per run" in n for n in result.notes)
    assert any("BatchNorm statistics were kept as they were" in n for n in result.notes)
    pruned = reload(result.output.main)
    assert pruned.features[0].out_channels == 4
    assert pruned(torch.randn(1, 1, 8, 8)).shape == (1, 4)
    assert d["accuracy_after"] == pytest.approx(_top1_one_at_a_time(pruned, quadrants))


def test_magnitude_pruning_evaluates_a_batch_of_one_model_one_sample_at_a_time(
    tmp_path: Path, quadrants: DatasetSpec
) -> None:
    files = write_model(tmp_path / "model", BATCH_OF_ONE)
    result = prune("prune.magnitude", files, tmp_path / "out", quadrants, sparsity=0.5)

    d = result.details
    assert d["batch"] == 1 and d["batchnorm_recalibrated"] == 0
    assert any("single samples cannot estimate them" in n for n in result.notes)
    pruned = reload(result.output.main)
    assert pruned(torch.randn(1, 1, 8, 8)).shape == (1, 4)
    assert d["accuracy_before"] == pytest.approx(
        _top1_one_at_a_time(load_torch_module(files, trusted=True), quadrants)
    )
    assert d["accuracy_after"] == pytest.approx(_top1_one_at_a_time(pruned, quadrants))
