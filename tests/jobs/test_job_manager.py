"""The job manager over a real pool and a real project database: states, once and only once."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest
from jobtools import WAIT_S, EventLog, cancelled_cooperatively, spec

from studio.api import StudioError
from studio.jobs.manager import CLOSED_RUNNING_MESSAGE, NOT_STARTED_MESSAGE, JobManager


def test_fifty_jobs_on_two_workers_each_end_once_in_the_record(project, make_manager) -> None:
    manager, log = make_manager(cpu_workers=2)
    done: Counter[int] = Counter()
    lock = threading.Lock()

    def on_done(record, result) -> None:
        with lock:
            done[record.id] += 1

    ids = []
    for n in range(50):
        job = spec("crash", how="raise") if n % 10 == 9 else spec("echo", n=n)
        ids.append(manager.submit(job, on_done=on_done))
    records = [manager.wait(job_id, WAIT_S) for job_id in ids]

    rows = project.store.list_jobs()
    assert len(rows) == 50 and sorted(r.id for r in rows) == sorted(ids)
    states = Counter(r.state for r in records)
    assert states == {"succeeded": 45, "failed": 5}
    assert all(r.finished_at is not None and r.started_at is not None for r in records)
    assert done == {job_id: 1 for job_id in ids}
    finals = Counter(e.job_id for e in log.events if e.final)
    starts = Counter(e.job_id for e in log.events if e.kind == "started")
    assert finals == {job_id: 1 for job_id in ids} and starts == finals
    assert manager.active() == []


def test_a_finished_job_records_its_times_device_log_and_result(project, make_manager) -> None:
    manager, log = make_manager(cpu_workers=1)
    results = []
    job_id = manager.submit(
        spec("echo", word="hi"), on_done=lambda record, result: results.append((record, result))
    )
    record = manager.wait(job_id, WAIT_S)
    assert record.state == "succeeded" and record.progress == 1.0 and record.device == "cpu"
    assert record.started_at <= record.finished_at
    assert "echo {'word': 'hi'}" in Path(record.log_path).read_text()
    ((seen, result),) = results
    assert seen.id == job_id and seen.state == "succeeded" and result["echo"] == {"word": "hi"}
    assert [e.kind for e in log.of(job_id)] == ["started", "succeeded"]


def test_a_failed_job_keeps_its_error_and_last_progress(make_manager) -> None:
    manager, _ = make_manager(cpu_workers=1)
    record = manager.wait(manager.submit(spec("crash", how="exit", code=3)), WAIT_S)
    assert record.state == "failed" and record.error == "worker exited with code 3"
    assert record.progress == pytest.approx(0.1)  # the crash target's last report


def test_a_result_that_cannot_be_recorded_fails_the_job(make_manager) -> None:
    manager, log = make_manager(cpu_workers=1)

    def on_done(record, result) -> None:
        raise StudioError("the output model is damaged")

    record = manager.wait(manager.submit(spec("echo"), on_done=on_done), WAIT_S)
    assert record.state == "failed"
    assert record.error == "the result could not be recorded: the output model is damaged"
    assert log.of(record.id)[-1].kind == "failed"


def test_cancel_a_queued_job_at_once_and_a_running_one_at_its_next_report(project, make_manager) -> None:
    manager, log = make_manager(cpu_workers=1, grace=WAIT_S)
    running = manager.submit(spec("sleep", seconds=60, steps=600))
    queued = manager.submit(spec("echo"))
    log.wait_event(running, "progress")

    assert manager.cancel(queued) is True
    assert project.store.get_job(queued).state == "cancelled"  # recorded before cancel returned
    assert manager.cancel(running) is True
    record = manager.wait(running, WAIT_S)
    assert record.state == "cancelled" and cancelled_cooperatively(record.log_path)
    assert manager.cancel(running) is False  # already over
    log.wait_event(queued, "cancelled")
    assert [e.kind for e in log.of(queued)] == ["cancelled"]
    assert manager.wait(queued, 0).started_at is None


def test_cancel_of_a_job_that_ignores_it_kills_it_after_the_grace_period(make_manager) -> None:
    manager, log = make_manager(cpu_workers=1, grace=1.0)
    job_id = manager.submit(spec("hang"))
    log.wait_event(job_id, "progress")
    manager.cancel(job_id)
    assert manager.wait(job_id, WAIT_S).state == "cancelled"  # the hanging job never ends by itself


def test_a_job_over_its_time_limit_is_recorded_as_failed(make_manager) -> None:
    manager, _ = make_manager(cpu_workers=1)
    record = manager.wait(manager.submit(spec("hang", timeout_s=0.3)), WAIT_S)
    assert record.state == "failed" and "limit of 0.3 s" in record.error


def test_a_job_no_worker_can_run_is_refused_before_anything_is_recorded(project, make_manager) -> None:
    manager, _ = make_manager(cpu_workers=1)
    with pytest.raises(StudioError, match="cuda:3"):
        manager.submit(spec("echo", device="cuda:3"))
    assert project.store.list_jobs() == []


def test_wait_gives_up_after_its_timeout(make_manager) -> None:
    manager, log = make_manager(cpu_workers=1)
    job_id = manager.submit(spec("sleep", seconds=60, steps=600))
    with pytest.raises(TimeoutError):
        manager.wait(job_id, 0.2)
    manager.cancel(job_id)


def test_recover_marks_jobs_left_running_or_queued_as_interrupted(project, make_pool) -> None:
    store = project.store
    finished = store.add_job(kind="optimize", technique="quantize.dynamic")
    store.update_job(finished.id, state="running")
    store.update_job(finished.id, state="succeeded")
    running = store.add_job(kind="optimize")
    store.update_job(running.id, state="running")
    queued = store.add_job(kind="measure")

    manager = JobManager(store, make_pool(cpu_workers=1), project.logs_dir)
    try:
        assert manager.recover() == 2
        assert store.get_job(finished.id).state == "succeeded"
        assert store.get_job(running.id).state == "interrupted"
        left = store.get_job(queued.id)
        assert left.state == "interrupted" and left.message == NOT_STARTED_MESSAGE
        manager.submit(spec("echo"))
        with pytest.raises(RuntimeError):
            manager.recover()
    finally:
        manager.close()


def test_close_records_unfinished_jobs_as_interrupted(project, make_pool) -> None:
    manager = JobManager(project.store, make_pool(cpu_workers=1), project.logs_dir)
    log = EventLog()
    manager.subscribe(log)
    running = manager.submit(spec("sleep", seconds=60, steps=600))
    queued = manager.submit(spec("echo"))
    log.wait_event(running, "started")
    manager.close()
    ran, waited = project.store.get_job(running), project.store.get_job(queued)
    assert ran.state == "interrupted" and ran.message == CLOSED_RUNNING_MESSAGE
    assert waited.state == "interrupted" and waited.finished_at is not None
    assert [e.kind for e in log.of(running)][-1] == "interrupted"
    with pytest.raises(StudioError, match="closed"):
        manager.submit(spec("echo"))


def test_listeners_get_every_event_and_can_unsubscribe(make_manager) -> None:
    manager, log = make_manager(cpu_workers=1)
    extra = EventLog()
    unsubscribe = manager.subscribe(extra)
    first = manager.submit(spec("sleep", seconds=0.2, steps=4))
    extra.wait_event(first, "succeeded")
    unsubscribe()
    second = manager.submit(spec("echo"))
    log.wait_event(second, "succeeded")
    assert [e.kind for e in extra.events] == [e.kind for e in log.of(first)]
    assert extra.events[0].kind == "started" and extra.events[-1].kind == "succeeded"
    assert all(e.job_id == first for e in extra.events)


def test_on_done_can_queue_the_next_step_as_a_recipe_does(make_manager) -> None:
    manager, log = make_manager(cpu_workers=1)
    follow_up: list[int] = []

    def then(record, result) -> None:
        follow_up.append(manager.submit(spec("echo", after=record.id)))

    first = manager.submit(spec("echo", step=1), on_done=then)
    manager.wait(first, WAIT_S)
    (second,) = follow_up
    record = manager.wait(second, WAIT_S)
    assert record.state == "succeeded"
    assert log.wait_event(second, "succeeded").result["echo"] == {"after": first}
