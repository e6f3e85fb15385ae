"""The shipped digits CNN distils into a student a fifth of its size at nearly its accuracy."""

from __future__ import annotations

import pytest

from studio.core.data import DatasetSpec
from studio.core.techniques import run_local


@pytest.mark.slow
def test_digits_student_with_a_fifth_of_the_parameters_keeps_98_percent(digits_teacher, tmp_path):
    result = run_local(
        "distill",
        digits_teacher,
        params={"width": 0.45, "epochs": 3},
        dataset=DatasetSpec(source="digits"),
        output_dir=tmp_path / "out",
        trusted=True,
    )
    d = result.details
    assert d["teacher"]["val_accuracy"] == pytest.approx(0.9944, abs=1e-4)
    assert d["param_ratio"] <= 0.21
    assert d["student"]["val_accuracy"] >= 0.98 * d["teacher"]["val_accuracy"]
    assert d["student"]["val_agreement"] >= 0.98
