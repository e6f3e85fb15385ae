"""Distillation on the shapes real models have: several heads, a torch.export teacher, a batch fixed
at one. Every teacher and student here is built and trained for real (one epoch, tiny models); a
student keeps every output of its teacher or the run is refused in one sentence, leaving nothing."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.api import ParameterError
from studio.core.data import DatasetSpec
from studio.core.models import ModelFiles, collect_files, load_torch_module
from studio.core.techniques import run_local
from studio.core.torch_structure import build_fresh
from studio.core.trust import grant

# A shared trunk with a 2-way classifier and a 4-value box regressor, each behind an activation.
# {box} sets the regressor's width and {heads} what forward returns, to make students that differ.
HEADS = """
import torch
from torch import nn

INPUT_SHAPE = (1, 3, 16, 16)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(3, {channels}, 3, padding=1), nn.BatchNorm2d({channels}), nn.ReLU(),
            nn.Conv2d({channels}, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.cls = nn.Linear(16, 2)
        self.box = nn.Linear(16, {box})

    def forward(self, x):
        f = self.trunk(x)
        return {heads}


def build_model():
    return Net()
"""
BOTH_HEADS = "torch.softmax(self.cls(f), dim=1), torch.sigmoid(self.box(f))"

# Exported for batch 1: the flatten is written for one sample, as in many deployed models.
BATCH_OF_ONE = """
from torch import nn

INPUT_SHAPE = (1, 3, 16, 16)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(2)
        )
        self.head = nn.Linear(32, 2)

    def forward(self, x):
        return self.head(self.features(x).view(1, -1))


def build_model():
    return Net()
"""

ONE_EPOCH = {"epochs": 1, "batch_size": 16, "learning_rate": 0.01}


def write_model(folder: Path, source: str, **sizes: object) -> ModelFiles:
    """An architecture file and its safetensors weights, trusted, as a user imports them."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    arch = folder / "net.py"
    arch.write_text(textwrap.dedent(source.format(**sizes) if sizes else source), encoding="utf-8")
    torch.manual_seed(0)
    module = build_fresh(arch)
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(folder / "net.safetensors"))
    files = collect_files(arch, weights=folder / "net.safetensors")
    grant(files)
    return files


def heads(folder: Path, *, channels: int = 8, box: int = 4, returns: str = BOTH_HEADS) -> ModelFiles:
    return write_model(folder, HEADS, channels=channels, box=box, heads=returns)


@pytest.fixture
def images(tmp_path: Path) -> DatasetSpec:
    """80 small colour images, labelled by which half is brighter (64 to train on, 16 to validate)."""
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 0.3, size=(80, 3, 16, 16)).astype(np.float32)
    y = rng.integers(0, 2, size=80)
    for i, label in enumerate(y):
        x[i, :, :, 8 * int(label) : 8 * int(label) + 8] += 1.0
    path = tmp_path / "halves.npz"
    np.savez(path, x=x, y=y.astype(np.int64))
    return DatasetSpec(source=str(path))


def shapes(result) -> list[tuple[int, ...]]:
    items = result if isinstance(result, (tuple, list)) else [result]
    return [tuple(t.shape) for t in items]


def saved(main: Path) -> torch.nn.Module:
    return load_torch_module(collect_files(main), trusted=True).eval()


def distill(
    teacher: ModelFiles | Path, out: Path, dataset: DatasetSpec, students: dict | None = None, **params
):
    return run_local(
        "distill",
        teacher,
        params={**ONE_EPOCH, **params},
        dataset=dataset,
        output_dir=out,
        trusted=True,
        resolve=lambda ref: ((students or {})[ref], None),
    )


def test_width_student_of_a_two_head_teacher_keeps_both_heads(tmp_path: Path, images: DatasetSpec) -> None:
    teacher = heads(tmp_path / "teacher")
    result = distill(teacher, tmp_path / "out", images, width=0.5)

    student = saved(result.output.main)
    assert student.trunk[0].out_channels == 4 and student.trunk[3].out_channels == 8
    assert (student.cls.out_features, student.box.out_features) == (2, 4)
    with torch.no_grad():
        assert shapes(student(torch.randn(3, 3, 16, 16))) == [(3, 2), (3, 4)]
    assert any("The teacher has 2 outputs" in n for n in result.notes)


@pytest.mark.parametrize(
    ("student", "message"),
    [
        (
            {"returns": "torch.softmax(self.cls(f), dim=1)"},
            "the student gives 1 output but the teacher gives 2 outputs",
        ),
        ({"box": 3}, "the student gives output[1] of shape (2, 3) but the teacher gives (2, 4)"),
    ],
)
def test_a_named_student_without_every_output_of_the_teacher_is_refused(
    tmp_path: Path, images: DatasetSpec, student: dict, message: str
) -> None:
    teacher = heads(tmp_path / "teacher")
    named = heads(tmp_path / "student", channels=4, **student)
    out = tmp_path / "out"
    with pytest.raises(ParameterError) as caught:
        distill(teacher, out, images, {"small": named}, student="version", student_ref="small")
    assert str(caught.value) == f"{message}; a student must take the teacher's input and give its output"
    assert not any(out.rglob("*"))


def test_a_torch_export_teacher_with_a_batch_of_one_teaches_a_named_student(
    tmp_path: Path, images: DatasetSpec
) -> None:
    module = load_torch_module(heads(tmp_path / "teacher"), trusted=True).eval()
    program = tmp_path / "teacher.pt2"  # exported at batch 1 without a dynamic dimension: it takes only 1
    torch.export.save(torch.export.export(module, (torch.randn(1, 3, 16, 16),)), str(program))
    student = heads(tmp_path / "student", channels=4)

    result = distill(
        program, tmp_path / "out", images, {"small": student}, student="version", student_ref="small"
    )

    assert result.details["batch"] == {"teacher": 1, "student": None}
    with torch.no_grad():
        assert shapes(saved(result.output.main)(torch.randn(2, 3, 16, 16))) == [(2, 2), (2, 4)]
    agreement = result.details["student"]["val_agreement"]
    assert 0.0 <= agreement <= 1.0  # scored against the teacher's outputs, computed one sample at a time


def test_a_teacher_that_takes_one_sample_trains_its_width_student_one_sample_at_a_time(
    tmp_path: Path, images: DatasetSpec
) -> None:
    teacher = write_model(tmp_path / "teacher", BATCH_OF_ONE)
    result = distill(teacher, tmp_path / "out", images, width=0.5)

    assert result.details["batch"] == {"teacher": 1, "student": 1}
    assert result.details["epochs"][1]["loss"] > 0  # the epoch really trained
    assert any("exactly 1 sample per run" in n for n in result.notes)
    assert any("BatchNorm statistics stayed as they came" in n for n in result.notes)
    student = saved(result.output.main)
    assert student.features[0].out_channels == 4
    assert shapes(student(torch.randn(1, 3, 16, 16))) == [(1, 2)]
