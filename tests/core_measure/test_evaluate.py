"""Accuracy, fidelity and batched prediction on real ONNX models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from studio.api import DatasetError, StudioError
from studio.core.evaluate import accuracy, fidelity, predict
from studio.core.models import collect_files
from studio.core.runtime import open_runner


@pytest.fixture
def open_onnx():
    opened = []

    def open_(path: Path):
        runner = open_runner(collect_files(path), threads=1)
        opened.append(runner)
        return runner

    yield open_
    for runner in opened:
        runner.close()


def test_accuracy_hand_built() -> None:
    outputs = np.array(
        [
            [0.9, 0.5, 0.4, 0.3, 0.2, 0.1],  # label 0: top-1 hit
            [0.1, 0.2, 0.3, 0.4, 0.5, 0.9],  # label 4: second best, top-5 hit
            [0.9, 0.8, 0.7, 0.6, 0.5, 0.1],  # label 5: worst, missed by both
            [0.0, 0.0, 1.0, 0.0, 0.0, 0.0],  # label 2: top-1 hit
        ]
    )
    result = accuracy(outputs, np.array([0, 4, 5, 2]))
    assert result == {"top1": 0.5, "top5": 0.75}


def test_accuracy_leaves_out_k_not_below_class_count() -> None:
    outputs = np.eye(3)
    assert accuracy(outputs, np.array([0, 1, 0])) == pytest.approx({"top1": 2 / 3})
    assert list(accuracy(np.eye(3), np.array([0, 1, 2]), ks=(1, 2, 5))) == ["top1", "top2"]


def test_accuracy_refuses_labels_that_do_not_fit() -> None:
    with pytest.raises(DatasetError, match="label 7 is out of range: the model's output has 3 classes"):
        accuracy(np.eye(3), np.array([0, 1, 7]))
    with pytest.raises(DatasetError, match="label -1 is out of range"):
        accuracy(np.eye(3), np.array([0, -1, 2]))
    with pytest.raises(DatasetError, match="3 outputs for 2 labels"):
        accuracy(np.eye(3), np.array([0, 1]))


def test_fidelity_identical_outputs() -> None:
    outputs = np.random.default_rng(0).standard_normal((8, 5)).astype(np.float32)
    result = fidelity(outputs, outputs.copy())
    assert result["cosine_mean"] == pytest.approx(1.0)
    assert result["cosine_min"] == pytest.approx(1.0)
    assert result["argmax_agreement"] == 1.0
    assert result["max_abs_error"] == 0.0


def test_fidelity_hand_built() -> None:
    reference = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0], [0.0, 0.0]])
    outputs = np.array([[0.0, 1.0], [0.0, 4.0], [3.0, 4.0], [0.0, 0.0]])
    result = fidelity(outputs, reference)
    assert result["cosine_min"] == pytest.approx(0.0)  # first sample orthogonal
    assert result["cosine_mean"] == pytest.approx(0.75)  # 0, 1 (same direction), 1, 1 (both zero)
    assert result["argmax_agreement"] == 0.75
    assert result["max_abs_error"] == 2.0


def test_fidelity_shape_mismatch() -> None:
    with pytest.raises(StudioError, match=r"shape \(2, 3\) but the reference's have \(2, 4\)"):
        fidelity(np.zeros((2, 3)), np.zeros((2, 4)))


def test_predict_matches_onnxruntime_over_several_batches(
    classifier_onnx: Path, open_onnx, ort_logits
) -> None:
    x = np.random.default_rng(1).standard_normal((37, 1, 8, 8)).astype(np.float32)
    outputs = predict(open_onnx(classifier_onnx), {"input": x}, batch_size=16)
    np.testing.assert_allclose(outputs, ort_logits(classifier_onnx, x), rtol=1e-5, atol=1e-6)


def test_predict_pads_for_a_fixed_batch_model(
    classifier_onnx: Path, classifier_b4_onnx: Path, open_onnx, ort_logits
) -> None:
    """Ten samples through a model that only takes batches of four: the last batch is padded."""
    x = np.random.default_rng(2).standard_normal((10, 1, 8, 8)).astype(np.float32)
    outputs = predict(open_onnx(classifier_b4_onnx), {"input": x}, batch_size=64)
    assert outputs.shape == (10, 10)
    np.testing.assert_allclose(outputs, ort_logits(classifier_onnx, x), rtol=1e-5, atol=1e-6)


def test_predict_two_inputs(token_onnx: Path, open_onnx) -> None:
    ids = np.arange(30, dtype=np.int64).reshape(5, 6) % 20
    mask = np.ones((5, 6), np.int64)
    outputs = predict(open_onnx(token_onnx), {"input_ids": ids, "attention_mask": mask}, batch_size=2)
    assert outputs.shape == (5, 3)
    one_by_one = [
        predict(open_onnx(token_onnx), {"input_ids": ids[i : i + 1], "attention_mask": mask[i : i + 1]})
        for i in range(5)
    ]
    np.testing.assert_allclose(outputs, np.concatenate(one_by_one), rtol=1e-5, atol=1e-6)
    session = ort.InferenceSession(str(token_onnx), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-6)
