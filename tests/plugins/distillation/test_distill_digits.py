"""The shipped digits CNN distils into a student a fifth of its size at nearly its accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.data import DatasetSpec, step_part
from studio.core.models import collect_files, load_torch_module
from studio.core.techniques import run_local


def _outputs(module, split) -> np.ndarray:
    import torch

    with torch.no_grad():
        return module.eval()(torch.from_numpy(split.arrays["x"])).numpy()


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
    teacher_module = load_torch_module(digits_teacher, trusted=True)
    student_module = load_torch_module(collect_files(result.output.main), trusted=True)
    # what the step reports is on its own validation split, cut from the part it may see ...
    own = step_part(digits.load()).split("validation")
    reported = [
        float((_outputs(m, own).argmax(1) == own.labels).mean()) for m in (teacher_module, student_module)
    ]
    assert (d["teacher"]["val_accuracy"], d["student"]["val_accuracy"]) == pytest.approx(tuple(reported))
    # ... and the target holds on the studio's validation split, which the step never saw
    held_out = digits.load().split("validation")
    teacher, student = _outputs(teacher_module, held_out), _outputs(student_module, held_out)
    teacher_top1 = float((teacher.argmax(1) == held_out.labels).mean())
    student_top1 = float((student.argmax(1) == held_out.labels).mean())
    agreement = float((student.argmax(1) == teacher.argmax(1)).mean())
    assert teacher_top1 == pytest.approx(0.9944, abs=1e-4)
    assert d["param_ratio"] <= 0.21
    assert student_top1 >= 0.98 * teacher_top1, (teacher_top1, student_top1)
    assert agreement >= 0.98
