"""The real work as jobs: a technique step and a measurement of the demo model, through the manager."""

from __future__ import annotations

from pathlib import Path

import pytest
from jobtools import WAIT_S

from studio.core.benchmark import BenchmarkSettings, MeasurementRequest, ModelRef
from studio.core.data import DatasetSpec
from studio.core.resources import resource
from studio.jobs.spec import JobSpec, measurement_spec, technique_spec
from studio.jobs.targets import local_device
from studio.jobs.worker import TechniqueJob


@pytest.fixture
def demo_model() -> ModelRef:
    return ModelRef(main=str(resource("demo/digits_cnn.onnx")), format="onnx")


def test_a_technique_step_and_a_measurement_run_side_by_side(make_manager, tmp_path, demo_model) -> None:
    manager, log = make_manager(cpu_workers=2)
    out = tmp_path / "out"
    out.mkdir()
    step = TechniqueJob(
        technique="quantize.fp16", params={}, model=demo_model, output_dir=str(out), device="cpu"
    )
    request = MeasurementRequest(
        model=demo_model,
        dataset=DatasetSpec(source=str(resource("demo/digits.npz"))),
        settings=BenchmarkSettings(threads=1, warmup=1, min_runs=3, min_seconds=0.0, max_seconds=5.0),
    )
    results: dict[str, dict] = {}
    step_id = manager.submit(technique_spec(step), on_done=lambda r, result: results.update(step=result))
    measure_id = manager.submit(
        measurement_spec(request), on_done=lambda r, result: results.update(measure=result)
    )

    step_record, measure_record = manager.wait(step_id, WAIT_S), manager.wait(measure_id, WAIT_S)
    assert step_record.state == "succeeded", step_record.error
    assert step_record.kind == "optimize" and step_record.technique == "quantize.fp16"
    main = Path(results["step"]["main"])
    assert main.parent == out and main.is_file()
    assert measure_record.state == "succeeded", measure_record.error
    assert results["measure"]["accuracy"]["top1"] > 0.5
    assert results["measure"]["latency_ms"]["p50"] > 0
    assert any(e.kind == "progress" for e in log.of(step_id))


def test_a_step_that_is_refused_fails_with_its_one_sentence(make_manager, tmp_path, demo_model) -> None:
    manager, _ = make_manager(cpu_workers=1)
    step = TechniqueJob(technique="no.such.technique", params={}, model=demo_model, output_dir=str(tmp_path))
    record = manager.wait(manager.submit(technique_spec(step)), WAIT_S)
    assert record.state == "failed" and "no.such.technique" in record.error
    assert "Traceback" not in record.error


def test_a_bound_gpu_worker_knows_its_gpu_as_cuda0(monkeypatch) -> None:
    monkeypatch.setenv("STUDIO_WORKER_DEVICE", "cuda:3")
    assert local_device("cuda:3") == "cuda:0" and local_device("cuda") == "cuda:0"
    assert local_device("cpu") == "cpu"
    monkeypatch.setenv("STUDIO_WORKER_DEVICE", "cpu")
    assert local_device("cuda:1") == "cuda:1"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"target": "not a target"}, "package.module:function"),
        ({"device": "gpu0"}, "'cpu', 'cuda' or 'cuda:N'"),
        ({"timeout_s": 0}, "positive"),
        ({"kwargs": {"path": Path("/x")}}, "JSON-ready"),
    ],
)
def test_a_job_spec_refuses_what_cannot_cross_a_process_boundary(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        JobSpec(**{"kind": "measure", "target": "standins:echo", **fields})
