"""Every request distillation cannot honour is refused before work, in one sentence, leaving nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.api import ParameterError, StudioError
from studio.core.models import collect_files
from studio.core.techniques import get_technique, run_local


def refuse(model, tmp_path: Path, params: dict, dataset, **kwargs) -> str:
    out = tmp_path / "out"
    with pytest.raises(StudioError) as caught:
        run_local("distill", model, params=params, dataset=dataset, output_dir=out, **kwargs)
    assert not any(out.rglob("*")), "a refused run must leave nothing behind"
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_onnx_teacher_cannot_be_narrowed(onnx_teacher, small_digits, tmp_path):
    message = refuse(onnx_teacher, tmp_path, {"student": "width"}, small_digits)
    assert "ONNX teacher has no architecture to shrink" in message
    assert "student_ref" in message


@pytest.mark.parametrize("width", [0.0, 1.0, 1.5, -0.2])
def test_width_out_of_range(teacher, small_digits, tmp_path, width):
    message = refuse(teacher, tmp_path, {"width": width}, small_digits, trusted=True)
    assert message.startswith("distill: width:")


def test_width_that_would_empty_a_layer(teacher, small_digits, tmp_path):
    message = refuse(teacher, tmp_path, {"width": 0.05}, small_digits, trusted=True)
    assert message == "width 0.05 would leave no channel in a layer of 16; use a width of at least 0.0625"


def test_version_student_needs_a_reference(teacher, small_digits, tmp_path):
    message = refuse(teacher, tmp_path, {"student": "version"}, small_digits, trusted=True)
    assert "student=version needs student_ref" in message


def test_reference_without_version_mode_is_refused(teacher, small_digits, tmp_path):
    message = refuse(teacher, tmp_path, {"student_ref": "small"}, small_digits, trusted=True)
    assert "set student=version" in message


def test_unknown_student_reference(onnx_teacher, small_digits, tmp_path):
    message = refuse(onnx_teacher, tmp_path, {"student": "version", "student_ref": "nowhere"}, small_digits)
    assert "'nowhere' is neither a model file nor a version" in message


def test_onnx_student_is_refused(onnx_teacher, small_digits, tmp_path):
    params = {"student": "version", "student_ref": str(onnx_teacher)}
    message = refuse(onnx_teacher, tmp_path, params, small_digits)
    assert "is an ONNX model; a student must be a PyTorch model" in message


def test_student_with_other_classes(onnx_teacher, small_digits, write_student, versions, tmp_path):
    five = write_student("five_classes", classes=5)
    params = {"student": "version", "student_ref": "five"}
    message = refuse(onnx_teacher, tmp_path, params, small_digits, resolve=versions({"five": five}))
    assert message.startswith("the student gives outputs of shape (2, 5) but the teacher gives (2, 10)")


def test_student_that_cannot_take_the_input(onnx_teacher, small_digits, write_student, versions, tmp_path):
    colour = write_student("colour", in_channels=3)
    params = {"student": "version", "student_ref": "colour"}
    message = refuse(onnx_teacher, tmp_path, params, small_digits, resolve=versions({"colour": colour}))
    assert message.startswith(
        "the student takes input of shape (batch, 3, 28, 28) but the teacher gives it (batch, 1, 28, 28)"
    )


def test_untrusted_student_is_not_run(onnx_teacher, small_digits, write_student, versions, tmp_path):
    student = write_student("student")
    untrusted = collect_files(student.main, student.weights_path)
    (untrusted.main.parent / "copy.py").write_text(untrusted.main.read_text() + "\n# edited\n")
    edited = collect_files(untrusted.main.parent / "copy.py", student.weights_path)
    params = {"student": "version", "student_ref": "edited"}
    message = refuse(onnx_teacher, tmp_path, params, small_digits, resolve=versions({"edited": edited}))
    assert "Pass --trust if you trust it" in message


def test_too_few_samples(teacher, tiny_digits, tmp_path):
    message = refuse(teacher, tmp_path, {}, tiny_digits, trusted=True)
    assert message == "distillation needs at least 32 training samples; the train split of digits_30 has 19"


def test_no_dataset(teacher, tmp_path):
    message = refuse(teacher, tmp_path, {}, None, trusted=True)
    assert "needs a dataset" in message


def test_labels_beyond_the_teacher_classes(teacher, tmp_path):
    import numpy as np

    from studio.core.data import DatasetSpec

    rng = np.random.default_rng(0)
    path = tmp_path / "twelve.npz"
    np.savez(path, x=rng.normal(size=(60, 1, 28, 28)).astype("float32"), y=np.arange(60) % 12)
    message = refuse(teacher, tmp_path, {}, DatasetSpec(source=str(path)), trusted=True)
    assert message == "the dataset has label 11 but the teacher has 10 classes (0 to 9)"


def test_unknown_parameter_is_named(teacher, small_digits, tmp_path):
    message = refuse(teacher, tmp_path, {"widht": 0.5}, small_digits, trusted=True)
    assert "there is no parameter 'widht'" in message


def test_parameters_are_described_for_the_form():
    schema = get_technique("distill").Params.model_json_schema()
    for name, field in schema["properties"].items():
        assert field.get("description"), f"{name} has no description"
        assert "default" in field, f"{name} has no default"
    assert schema["properties"]["width"]["exclusiveMinimum"] == 0
    assert schema["properties"]["width"]["exclusiveMaximum"] == 1


def test_errors_are_parameter_errors(onnx_teacher, small_digits, tmp_path):
    with pytest.raises(ParameterError):
        run_local("distill", onnx_teacher, params={}, dataset=small_digits, output_dir=tmp_path / "o")
