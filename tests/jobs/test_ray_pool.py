"""The Ray pool against a real local Ray, through the job manager, as the studio would use it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from jobtools import WAIT_S, EventLog, cancelled_cooperatively, spec

from studio.jobs.manager import JobManager
from studio.jobs.spec import JobSpec
from studio.project import Project

pytest.importorskip("ray", reason="ray is not installed (pip install '.[ray]')")
pytestmark = pytest.mark.slow

GRACE_S = 5.0  # long enough that a loaded machine still stops a cooperative job before the force


@pytest.fixture(scope="module")
def ray_manager(tmp_path_factory) -> Iterator[tuple[JobManager, EventLog, Project]]:
    from studio.jobs.ray_pool import RayPool

    project = Project.create(tmp_path_factory.mktemp("ray") / "p")
    pool = RayPool("ray", num_cpus=2, include_dashboard=False, cancel_grace_s=GRACE_S)
    manager = JobManager(project.store, pool, project.logs_dir)
    log = EventLog()
    manager.subscribe(log)
    yield manager, log, project
    manager.close()
    project.close()


def test_a_job_runs_on_ray_and_its_log_comes_back(ray_manager) -> None:
    manager, log, _ = ray_manager
    record = manager.wait(manager.submit(spec("echo", word="remote")), WAIT_S)
    assert record.state == "succeeded" and record.device == "cpu"
    text = Path(record.log_path).read_text()
    assert "echo {'word': 'remote'}" in text and "echo logged {'word': 'remote'}" in text
    assert [e.kind for e in log.of(record.id)][0] == "started"


def test_the_output_folder_comes_back_as_bytes_before_success_is_reported(ray_manager, tmp_path) -> None:
    manager, _, _ = ray_manager
    out = tmp_path / "out"
    files = {"model.onnx": "weights", "notes.txt": "made remotely"}
    job = JobSpec(
        kind="optimize",
        target="standins:write_files",
        kwargs={"output_dir": str(out), "files": files},
        output_dir=str(out),
    )
    seen = {}

    def on_done(record, result) -> None:  # runs before the job is recorded as succeeded
        seen.update({name: (out / name).read_text() for name in files}, main=result["main"])

    record = manager.wait(manager.submit(job, on_done=on_done), WAIT_S)
    assert record.state == "succeeded"
    assert seen == {**files, "main": str(out / "model.onnx")}


def test_cancel_of_a_cooperative_remote_job_stops_it_at_its_next_report(ray_manager) -> None:
    manager, log, _ = ray_manager
    job_id = manager.submit(spec("sleep", seconds=600, steps=60000))
    log.wait_event(job_id, "progress")
    manager.cancel(job_id)
    record = manager.wait(job_id, WAIT_S)
    assert record.state == "cancelled" and cancelled_cooperatively(record.log_path)


def test_cancel_of_a_job_still_waiting_for_a_ray_worker(ray_manager) -> None:
    manager, log, _ = ray_manager
    busy = [manager.submit(spec("sleep", seconds=60, steps=600)) for _ in range(2)]  # both CPUs
    for job_id in busy:
        log.wait_event(job_id, "started")
    waiting = manager.submit(spec("echo"))
    manager.cancel(waiting)
    assert manager.wait(waiting, WAIT_S).state == "cancelled"
    assert [e.kind for e in log.of(waiting)] == ["cancelled"]
    for job_id in busy:
        manager.cancel(job_id)
        assert manager.wait(job_id, WAIT_S).state == "cancelled"


def test_a_remote_job_that_ignores_cancel_is_stopped_by_force(ray_manager) -> None:
    manager, log, _ = ray_manager
    job_id = manager.submit(spec("hang"))
    log.wait_event(job_id, "progress")
    manager.cancel(job_id)
    record = manager.wait(job_id, WAIT_S)  # the hanging job never ends by itself: Ray's forced cancel
    assert record.state == "cancelled" and not cancelled_cooperatively(record.log_path)


def test_a_remote_worker_that_dies_fails_its_job_and_the_next_one_runs(ray_manager) -> None:
    manager, _, _ = ray_manager
    record = manager.wait(manager.submit(spec("crash", how="kill")), WAIT_S)
    assert record.state == "failed" and "Ray worker running the job died" in record.error
    assert manager.wait(manager.submit(spec("echo")), WAIT_S).state == "succeeded"


def test_remote_failures_and_time_limits_are_reported_like_local_ones(ray_manager) -> None:
    manager, _, _ = ray_manager
    raised = manager.wait(manager.submit(spec("crash", how="raise")), WAIT_S)
    assert (
        raised.state == "failed"
        and raised.error == "the job failed: RuntimeError: crashed on purpose (raise)"
    )
    slow = manager.wait(manager.submit(spec("hang", timeout_s=0.5)), WAIT_S)
    assert slow.state == "failed" and "limit of 0.5 s" in slow.error
