"""The gate after every step, on real ONNX models run by ONNX Runtime: an unchanged interface and a
faithful output pass; a changed interface is never kept; a collapsed output is flagged, or refused
below a floor the user set."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from studio.api import StudioError, TensorSpec
from studio.core.data import DatasetSpec
from studio.core.gate import (
    AGREEMENT_FLOOR,
    COSINE_FLOOR,
    GATE_SAMPLES,
    InterfaceChanged,
    check_step_output,
    interface_problem,
)
from studio.core.resources import resource
from studio.core.runtime import OnnxRunner


def _export(module: torch.nn.Module, path: Path, shape=(1, 8), dynamic: bool = True) -> Path:
    module.eval()
    torch.onnx.export(
        module,
        (torch.randn(*shape),),
        str(path),
        input_names=["input"],
        output_names=["output"],
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}} if dynamic else None,
        dynamo=False,
    )
    return path


def _runner(path: Path) -> OnnxRunner:
    return OnnxRunner(path, device="cpu", threads=1)


def _net(seed: int, outputs: int = 4) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, outputs))


def test_the_same_model_passes_with_full_fidelity_on_random_inputs(tmp_path: Path) -> None:
    path = _export(_net(0), tmp_path / "a.onnx")
    report = check_step_output(_runner(path), _runner(path), None)
    assert not report.collapsed and report.samples == GATE_SAMPLES and report.source == "random inputs"
    assert report.rule == "worst cosine" and report.figure == pytest.approx(1.0)
    assert report.floor == COSINE_FLOOR


def test_an_unrelated_output_is_flagged_and_refused_below_a_floor(tmp_path: Path) -> None:
    parent = _runner(_export(_net(0), tmp_path / "parent.onnx"))
    stranger = _runner(_export(_net(1), tmp_path / "other.onnx"))
    report = check_step_output(parent, stranger, None)
    assert report.collapsed and report.figure < COSINE_FLOOR
    assert "worst cosine with the parent" in report.sentence() and "64 held-out samples" in report.sentence()
    with pytest.raises(StudioError, match=r"the result was refused: .* below the floor of 0.5 you set"):
        check_step_output(parent, stranger, None, floor=0.5)


def test_a_changed_output_width_is_never_kept(tmp_path: Path) -> None:
    parent = _runner(_export(_net(0, outputs=2), tmp_path / "two.onnx"))
    cut = _runner(_export(_net(0, outputs=1), tmp_path / "one.onnx"))
    with pytest.raises(
        InterfaceChanged, match=r"output 'output' has shape \[batch, 1\] where its parent's has \[batch, 2\]"
    ):
        check_step_output(parent, cut, None)


def test_a_fixed_batch_model_is_checked_one_sample_at_a_time(tmp_path: Path) -> None:
    path = _export(_net(0), tmp_path / "fixed.onnx", dynamic=False)
    report = check_step_output(_runner(path), _runner(path), None)
    assert report.samples == GATE_SAMPLES and report.figure == pytest.approx(1.0)


def test_class_scores_on_the_validation_split_are_judged_by_top1_agreement() -> None:
    digits = resource("demo", "digits_cnn.onnx")
    report = check_step_output(_runner(digits), _runner(digits), DatasetSpec(source="digits"))
    assert report.rule == "top-1 agreement" and report.floor == AGREEMENT_FLOOR
    assert report.source == "validation split of digits" and report.figure == 1.0


def test_interface_rules_ignore_the_batch_and_symbols_but_not_names_ranks_or_sizes() -> None:
    spec = [TensorSpec("x", ("batch", 3, 32, 32), "float32")]
    out = [TensorSpec("y", ("batch", 10), "float32")]
    assert interface_problem(spec, out, [TensorSpec("x", (1, 3, 32, 32), "float32")], out) is None
    assert interface_problem(spec, out, spec, [TensorSpec("y", ("n", "classes"), "float32")]) is None
    assert "its outputs are 'z'" in interface_problem(
        spec, out, spec, [TensorSpec("z", ("batch", 10), "float32")]
    )
    assert "has 3 dimensions" in interface_problem(
        spec, out, [TensorSpec("x", ("batch", 3, 32), "float32")], out
    )
    assert "dimension 1 changed" in interface_problem(
        spec, out, spec, [TensorSpec("y", ("batch", 9), "float32")]
    )


def test_without_a_dataset_a_free_inner_dimension_asks_for_one(tmp_path: Path) -> None:
    path = tmp_path / "free.onnx"
    module = torch.nn.Conv1d(2, 2, 1).eval()
    torch.onnx.export(
        module, (torch.randn(1, 2, 5),), str(path), input_names=["input"], output_names=["output"],
        dynamic_axes={"input": {0: "batch", 2: "time"}, "output": {0: "batch", 2: "time"}}, dynamo=False,
    )  # fmt: skip
    with pytest.raises(StudioError, match=r"give the step a dataset \(--data\)"):
        check_step_output(_runner(path), _runner(path), None)
