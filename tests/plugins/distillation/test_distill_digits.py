"""The shipped digits CNN distils into a student a fifth of its size at nearly its accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.data import DatasetSpec
from studio.core.models import collect_files, load_torch_module
from studio.core.techniques import run_local


def _validation_outputs(module, dataset: DatasetSpec) -> np.ndarray:
    import torch

    with torch.no_grad():
        return module.eval()(torch.from_numpy(dataset.load().split("validation").arrays["x"])).numpy()


@pytest.mark.slow
def test_digits_student_with_a_fifth_of_the_parameters_keeps_98_percent(digits_teacher, tmp_path):
    digits = DatasetSpec(source="digits")
    result = run_local(
        "distill",
        digits_teacher,
        params={"width": 0.45, "epochs": 3},
        dataset=digits,
        output_dir=tmp_path / "out",
        trusted=True,
    )
    d = result.details
    labels = digits.load().split("validation").labels
    teacher = _validation_outputs(load_torch_module(digits_teacher, trusted=True), digits)
    student = _validation_outputs(load_torch_module(collect_files(result.output.main), trusted=True), digits)
    teacher_top1 = float((teacher.argmax(1) == labels).mean())
    student_top1 = float((student.argmax(1) == labels).mean())
    agreement = float((student.argmax(1) == teacher.argmax(1)).mean())
    assert teacher_top1 == pytest.approx(0.9944, abs=1e-4)
    assert (d["teacher"]["val_accuracy"], d["student"]["val_accuracy"]) == pytest.approx(
        (teacher_top1, student_top1)
    )
    assert d["param_ratio"] <= 0.21
    assert student_top1 >= 0.98 * teacher_top1, (teacher_top1, student_top1)
    assert agreement >= 0.98
