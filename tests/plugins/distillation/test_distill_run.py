"""Distillation runs end to end: PyTorch and ONNX teachers, width and named students."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.api import Cancelled
from studio.core.data import DatasetSpec, step_part
from studio.core.models import ModelFormat, collect_files, load_torch_module
from studio.core.techniques import run_local
from studio.core.trust import grant

# short runs that still learn: small batches and a high rate on 320 training samples
QUICK = {"batch_size": 16, "learning_rate": 0.01}


def validation_accuracy(main: Path, dataset: DatasetSpec) -> float:
    """Top-1 of a saved model, reloaded the way the studio reloads it, on the step's own validation
    split (the one its figures are reported on)."""
    module = load_torch_module(collect_files(main), trusted=True)
    split = step_part(dataset.load()).split("validation")
    with torch.no_grad():
        predicted = module(torch.from_numpy(split.arrays["x"])).argmax(1).numpy()
    return float((predicted == split.labels).mean())


def agreement_with_teacher(main: Path, teacher: np.ndarray, dataset: DatasetSpec) -> float:
    """Share of validation samples where the saved student and the teacher pick the same class."""
    module = load_torch_module(collect_files(main), trusted=True).eval()
    split = step_part(dataset.load()).split("validation")
    with torch.no_grad():
        student = module(torch.from_numpy(split.arrays["x"])).numpy()
    return float((student.argmax(1) == teacher.argmax(1)).mean())


def torch_teacher_outputs(files, dataset: DatasetSpec) -> np.ndarray:
    module = load_torch_module(files, trusted=True).eval()
    with torch.no_grad():
        return module(torch.from_numpy(step_part(dataset.load()).split("validation").arrays["x"])).numpy()


def test_width_student_is_a_quarter_of_the_teacher_and_keeps_its_best_epoch(teacher, small_digits, tmp_path):
    reports: list[tuple[float, str]] = []
    out = tmp_path / "out"
    result = run_local(
        "distill",
        teacher,
        params={"width": 0.5, "epochs": 2, **QUICK},
        dataset=small_digits,
        output_dir=out,
        trusted=True,
        progress=lambda f, m: reports.append((f, m)),
    )
    d = result.details
    assert result.output.kind == "torch"
    assert result.effective_params == {"learning_rate": 0.01}  # recorded over the parameters as given
    assert sorted(p.name for p in out.iterdir()) == [
        "teacher_cnn.py",
        "teacher_cnn.safetensors",
        "teacher_cnn.structure.json",
    ]
    # 16 -> 8 and 32 -> 16 channels; the 10 outputs stay
    assert d["teacher"]["params"] == 144 + 32 + 4608 + 64 + 330
    assert d["student"]["params"] == 72 + 16 + 1152 + 32 + 170
    assert 0.25 < d["mac_ratio"] < 0.3  # the first layer narrows only by its outputs
    assert [e["epoch"] for e in d["epochs"]] == [0, 1, 2]  # 0: the pruned copy before training
    assert [e["trained"] for e in d["epochs"]] == [False, True, True]
    start, *trained = d["epochs"]
    assert (start["loss"], start["soft_loss"], start["hard_loss"]) == (None, None, None)
    assert all(e["loss"] > 0 and e["soft_loss"] > 0 and e["hard_loss"] > 0 for e in trained)
    assert d["student"]["start_val_accuracy"] == start["val_accuracy"]
    best = d["epochs"][d["best_epoch"]]
    assert best["val_accuracy"] == max(e["val_accuracy"] for e in d["epochs"])
    # the saved weights are the best epoch's: reloaded, they score what the run reported
    assert validation_accuracy(result.output.main, small_digits) == pytest.approx(best["val_accuracy"])
    assert best["val_accuracy"] > 0.5
    assert d["teacher"]["val_accuracy"] > 0.8
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(m.startswith("epoch 2/2") for _, m in reports)
    assert any("quantize" in n for n in result.notes)
    json.dumps(d)  # the window stores and charts it


def test_onnx_teacher_distils_into_a_named_student(
    onnx_teacher, small_digits, write_student, versions, tmp_path
):
    student = write_student("small_cnn")
    before = load_torch_module(student, trusted=True).state_dict()
    result = run_local(
        "distill",
        onnx_teacher,
        params={"student": "version", "student_ref": "small", "epochs": 8, **QUICK},
        dataset=small_digits,
        output_dir=tmp_path / "out",
        resolve=versions({"small": student}),
    )
    d = result.details
    assert d["teacher"]["kind"] == "onnx"
    assert result.output.main.name == "small_cnn.py"
    assert d["student"]["params"] < 0.5 * d["teacher"]["params"]
    after = load_torch_module(collect_files(result.output.main), trusted=True).state_dict()
    assert not torch.equal(before["0.weight"], after["0.weight"])
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_teacher), providers=["CPUExecutionProvider"])
    x = step_part(small_digits.load()).split("validation").arrays["x"]
    agreement = agreement_with_teacher(result.output.main, session.run(None, {"input": x})[0], small_digits)
    assert d["student"]["val_agreement"] == pytest.approx(agreement)
    # eight short epochs from random weights: well past chance (10 %)
    assert agreement > 0.3


def test_a_saved_student_can_be_distilled_again_by_path(teacher, small_digits, tmp_path):
    first = run_local(
        "distill",
        teacher,
        params={"width": 0.5, "epochs": 1, **QUICK},
        dataset=small_digits,
        output_dir=tmp_path / "first",
        trusted=True,
    )
    grant(collect_files(first.output.main))  # the user trusts the architecture file once
    second = run_local(
        "distill",
        teacher,
        params={"student": "version", "student_ref": str(first.output.main), "epochs": 1, **QUICK},
        dataset=small_digits,
        output_dir=tmp_path / "second",
        trusted=True,
    )
    assert second.details["student"]["params"] == first.details["student"]["params"]
    assert collect_files(second.output.main).format is ModelFormat.TORCH_ARCHITECTURE


def test_random_init_starts_from_fresh_weights(teacher, small_digits, tmp_path):
    kept = run_local(
        "distill",
        teacher,
        params={"width": 0.5, "epochs": 1, **QUICK},
        dataset=small_digits,
        output_dir=tmp_path / "kept",
        trusted=True,
    )
    fresh = run_local(
        "distill",
        teacher,
        params={"width": 0.5, "epochs": 1, "student_init": "random", **QUICK},
        dataset=small_digits,
        output_dir=tmp_path / "fresh",
        trusted=True,
    )
    assert fresh.details["student"]["params"] == kept.details["student"]["params"]
    assert fresh.details["student"]["init"] == "random"
    # the pruned copy starts near the teacher; fresh weights after one short epoch do not
    assert fresh.details["student"]["val_accuracy"] < kept.details["student"]["val_accuracy"]


def test_without_labels_the_student_learns_the_teacher_alone(teacher, unlabelled_digits, tmp_path):
    result = run_local(
        "distill",
        teacher,
        params={"width": 0.5, "epochs": 2, **QUICK},
        dataset=unlabelled_digits,
        output_dir=tmp_path / "out",
        trusted=True,
    )
    d = result.details
    assert d["settings"]["labels_used"] is False
    assert d["student"]["val_accuracy"] is None and d["teacher"]["val_accuracy"] is None
    trained = [e for e in d["epochs"] if e["trained"]]
    assert len(trained) == 2
    assert all(e["hard_loss"] is None and e["loss"] == e["soft_loss"] for e in trained)
    agreement = agreement_with_teacher(
        result.output.main, torch_teacher_outputs(teacher, unlabelled_digits), unlabelled_digits
    )
    assert d["student"]["val_agreement"] == pytest.approx(agreement)
    assert agreement > 0.5
    assert any("no labels" in n for n in result.notes)


def test_cancel_during_training_leaves_no_model(teacher, small_digits, tmp_path):
    out = tmp_path / "out"
    asked = {"stop": False}

    def progress(fraction: float, message: str) -> None:
        if message.startswith("epoch"):
            asked["stop"] = True

    with pytest.raises(Cancelled):
        run_local(
            "distill",
            teacher,
            params={"width": 0.5, "epochs": 3},
            dataset=small_digits,
            output_dir=out,
            trusted=True,
            progress=progress,
            cancel_requested=lambda: asked["stop"],
        )
    assert not any(p.suffix in (".py", ".safetensors", ".json") for p in out.rglob("*"))


def _reloaded(main: Path) -> torch.nn.Module:
    return load_torch_module(collect_files(main), trusted=True).eval()


def _trained_epochs(details: dict) -> list[dict]:
    """The rows of the epochs that trained, without their timings (which no seed fixes)."""
    rows = [{k: v for k, v in e.items() if k != "seconds"} for e in details["epochs"] if e["trained"]]
    assert rows and all(row["loss"] is not None for row in rows)
    return rows


def test_the_same_seed_gives_the_same_student(teacher, small_digits, tmp_path):
    def distil(seed: int, folder: str):
        return run_local(
            "distill",
            teacher,
            params={"width": 0.5, "epochs": 2, "seed": seed, **QUICK},
            dataset=small_digits,
            output_dir=tmp_path / folder,
            trusted=True,
            threads=1,
        )

    first, again, other = distil(3, "first"), distil(3, "again"), distil(4, "other")

    # the students compared are trained ones, not the starting copy kept unchanged
    assert first.details["best_epoch"] > 0 and other.details["best_epoch"] > 0

    # the same seed: the same training, epoch by epoch, and bit for bit the same student
    assert _trained_epochs(again.details) == _trained_epochs(first.details)
    assert again.details["best_epoch"] == first.details["best_epoch"]
    a, b = _reloaded(first.output.main).state_dict(), _reloaded(again.output.main).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[name], b[name]) for name in a)
    x = torch.from_numpy(step_part(small_digits.load()).split("validation").arrays["x"])
    with torch.no_grad():
        outputs = [_reloaded(r.output.main)(x) for r in (first, again, other)]
    assert torch.equal(outputs[0], outputs[1])

    # another seed shuffles the batches differently: other losses, other weights, other outputs
    first_losses = [row["loss"] for row in _trained_epochs(first.details)]
    other_losses = [row["loss"] for row in _trained_epochs(other.details)]
    assert all(mine != theirs for mine, theirs in zip(first_losses, other_losses, strict=True))
    c = _reloaded(other.output.main).state_dict()
    assert not torch.equal(a["0.weight"], c["0.weight"])
    assert not torch.allclose(outputs[0], outputs[2], atol=1e-4)
