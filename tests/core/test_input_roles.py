"""Inputs that are not batches: a recurrent state and a sample rate, inferred and set by the user.

The model is the corpus's streaming network (``input[batch, 64]``, ``state[2, batch, 32]``, a
scalar ``sr``), exported from a real torch module; it runs for real through ONNX Runtime.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from studio.api import StudioError, TensorSpec
from studio.core.benchmark import BenchmarkSettings
from studio.core.input_roles import (
    InputValueNeeded,
    assign_roles,
    infer_roles,
    parse_input_spec,
    roles_of,
)
from studio.core.models import collect_files
from studio.core.runtime import open_runner
from studio.engine import Engine
from studio.project import Project

STREAMING = [
    TensorSpec("input", ("batch", 64), "float32"),
    TensorSpec("state", (2, "batch", 32), "float32"),
    TensorSpec("sr", (), "int64"),
]


def test_a_state_is_not_taken_for_the_batch_and_a_single_number_needs_its_value():
    assert infer_roles(STREAMING) == {"input": "batch", "state": "state", "sr": ""}
    with pytest.raises(InputValueNeeded, match=r"input 'sr' is a single number .* --input-spec sr=VALUE"):
        assign_roles(STREAMING)
    roles = roles_of(assign_roles(STREAMING, {"sr": "16000"}))
    assert roles == {"input": "batch", "state": "state", "sr": "16000"}


def test_the_state_comes_second_even_when_it_is_listed_first():
    specs = [STREAMING[1], STREAMING[0]]
    assert infer_roles(specs) == {"state": "state", "input": "batch"}


def test_inputs_that_all_share_the_batch_are_all_batches():
    specs = [TensorSpec("ids", ("batch", "seq"), "int64"), TensorSpec("mask", ("N", "seq"), "int64")]
    assert infer_roles(specs) == {"ids": "batch", "mask": "batch"}
    fixed = [TensorSpec("image", (1, 3, 8, 8), "float32")]
    assert infer_roles(fixed) == {"image": "batch"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sr", "not an input role"),
        ("sr=", "not an input role"),
        ("sr=fast", "must be batch, state or a number"),
        ("sr=nan", "must be batch, state or a number"),
    ],
)
def test_a_malformed_input_spec_is_one_sentence(text, message):
    with pytest.raises(StudioError, match=message):
        parse_input_spec(text)


def test_a_spec_is_checked_against_the_model():
    assert parse_input_spec("sr=16000, state=STATE") == {"sr": "16000", "state": "state"}
    with pytest.raises(StudioError, match="has no input 'rate'; its inputs are input, state, sr"):
        assign_roles(STREAMING, {"rate": "16000"})
    with pytest.raises(StudioError, match="'sr' is a single number: give it a value, not batch"):
        assign_roles(STREAMING, {"sr": "batch"})
    with pytest.raises(StudioError, match="at least one of the model's inputs must take the samples"):
        assign_roles(STREAMING, {"input": "state", "sr": "1"})


@pytest.fixture
def streaming(corpus_models):
    return corpus_models["state and sample-rate inputs"]


def test_a_runner_takes_the_samples_and_fills_in_the_state_and_the_rate(streaming):
    runner = open_runner(collect_files(streaming.model), input_roles={"sr": "16000"})
    try:
        assert [(s.name, s.shape) for s in runner.inputs] == [("input", (1, 64))]  # one stream
        frame = np.random.default_rng(0).standard_normal((1, 64)).astype(np.float32)
        scores, state = runner.run({"input": frame})
    finally:
        runner.close()
    assert scores.shape == (1, 2) and state.shape == (2, 1, 32)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(streaming.model), providers=["CPUExecutionProvider"])
    direct = session.run(
        None, {"input": frame, "state": np.zeros((2, 1, 32), np.float32), "sr": np.array(16000)}
    )
    np.testing.assert_allclose(scores, direct[0], rtol=1e-6)
    with pytest.raises(InputValueNeeded):
        open_runner(collect_files(streaming.model))


def test_a_version_keeps_its_roles_and_its_steps_inherit_them(streaming, tmp_path):
    """Imported with the rate given, measured one frame at a time, quantized with calibration
    that feeds state and rate, and the result recorded with the same roles."""
    with Project.create(tmp_path / "project") as project:
        with pytest.raises(InputValueNeeded):
            project.import_model(streaming.model)
        assert project.store.list_versions() == []
        version = project.import_model(streaming.model, input_roles=streaming.input_roles)
        assert roles_of(version.inputs) == {"input": "batch", "state": "state", "sr": "16000"}
        settings = BenchmarkSettings(batch=1, threads=1, warmup=1, min_runs=2, min_seconds=0)
        with Engine.for_project(project) as engine:
            measured = engine.measure(version, dataset=str(streaming.dataset), settings=settings)
            outcome = engine.run_step(
                version,
                "quantize.static",
                {"calibration_samples": 16},
                dataset=str(streaming.dataset),
                measure=None,
            )
            with pytest.raises(StudioError, match="state input, which holds one stream: .* at batch 4"):
                engine.measure(version, settings=dataclasses.replace(settings, batch=4))
        assert measured.samples == 80  # the validation split (20 % of 400), fed frame by frame
        child = outcome.version
        assert roles_of(child.inputs) == roles_of(version.inputs)
        gate = child.details["gate"]
        assert gate["samples"] == 64 and not gate["collapsed"]
