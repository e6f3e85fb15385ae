"""The local pool with real spawned workers: device binding, crashes, timeouts, cancel, logs."""

from __future__ import annotations

import dataclasses
import os
import signal

import pytest
from jobtools import TEST_GRACE_S, WAIT_S, cancelled_cooperatively, spec

from studio.api import StudioError
from studio.jobs.runner import PROGRESS_INTERVAL_S


def test_a_job_on_an_injected_gpu_worker_sees_only_that_gpu(pool_events, tmp_path) -> None:
    pool, log = pool_events(devices=["cuda:0", "cuda:1"], cpu_workers=0)
    pool.submit(1, spec("echo", device="cuda:1"), tmp_path / "1.log")
    pool.submit(2, spec("echo", device="cuda:0"), tmp_path / "2.log")
    one, zero = log.wait_final(1), log.wait_final(2)
    assert one.kind == "succeeded" and one.result["cuda_visible_devices"] == "1"
    assert one.result["device"] == "cuda:1" and one.device == "cuda:1"
    assert zero.result["cuda_visible_devices"] == "0"


def test_a_cpu_worker_sees_no_gpu_and_a_job_for_a_missing_device_is_refused(pool_events, tmp_path) -> None:
    pool, log = pool_events(cpu_workers=1)
    pool.submit(1, spec("echo"), tmp_path / "1.log")
    assert log.wait_final(1).result["cuda_visible_devices"] == ""
    with pytest.raises(StudioError, match="no worker can run a job on cuda:0"):
        pool.submit(2, spec("echo", device="cuda:0"), tmp_path / "2.log")


def test_a_worker_killed_by_sigkill_fails_its_job_and_is_replaced(pool_events, tmp_path) -> None:
    pool, log = pool_events(cpu_workers=2)
    pool.submit(1, spec("sleep", seconds=60, steps=600), tmp_path / "1.log")
    log.wait_event(1, "progress")
    victim = next(w.pid for w in pool.workers() if w.job_id == 1)
    os.kill(victim, signal.SIGKILL)
    failed = log.wait_final(1)
    assert failed.kind == "failed" and "SIGKILL" in failed.error
    assert pool.wait_ready(WAIT_S)
    pids = [w.pid for w in pool.workers()]
    assert len(pids) == 2 and victim not in pids
    pool.submit(2, spec("echo", n=2), tmp_path / "2.log")
    assert log.wait_final(2).kind == "succeeded"


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("exit", "worker exited with code 3"),
        ("segfault", "worker killed by SIGSEGV"),
        ("oom", "the job ran out of memory"),
        ("raise", "RuntimeError: crashed on purpose"),
    ],
)
def test_every_way_a_job_can_crash_names_its_reason(pool_events, tmp_path, how: str, reason: str) -> None:
    pool, log = pool_events(cpu_workers=1)
    pool.submit(1, spec("crash", how=how), tmp_path / "1.log")
    failed = log.wait_final(1)
    assert failed.kind == "failed" and reason in failed.error
    assert reason in (tmp_path / "1.log").read_text(), "the log says how the job ended"
    pool.submit(2, spec("echo"), tmp_path / "2.log")
    assert log.wait_final(2).kind == "succeeded"


def test_a_job_over_its_time_limit_fails_and_its_worker_is_replaced(pool_events, tmp_path) -> None:
    pool, log = pool_events(cpu_workers=1)
    pool.submit(1, spec("hang", timeout_s=0.5), tmp_path / "1.log")
    log.wait_event(1, "progress")
    hung = pool.workers()[0].pid
    failed = log.wait_final(1)  # the hanging job never ends by itself: only the limit ends it
    assert failed.kind == "failed" and "limit of 0.5 s" in failed.error
    assert pool.wait_ready(WAIT_S)
    assert hung not in [w.pid for w in pool.workers()]
    pool.submit(2, spec("echo"), tmp_path / "2.log")
    assert log.wait_final(2).kind == "succeeded"


def test_cancel_of_a_cooperative_job_stops_it_at_its_next_report(pool_events, tmp_path) -> None:
    pool, log = pool_events(cpu_workers=1, grace=WAIT_S)  # no kill before the test gives up
    pool.submit(1, spec("sleep", seconds=600, steps=60000), tmp_path / "1.log")
    log.wait_event(1, "progress")
    pid = pool.workers()[0].pid
    assert pool.cancel(1) is False  # it was running: the end comes as an event
    assert log.wait_final(1).kind == "cancelled"
    assert cancelled_cooperatively(tmp_path / "1.log")
    assert pool.workers()[0].pid == pid  # it stopped by itself: the worker lives on


def test_cancel_of_a_job_that_ignores_it_ends_after_the_grace_period(pool_events, tmp_path) -> None:
    pool, log = pool_events(cpu_workers=1, grace=TEST_GRACE_S)
    pool.submit(1, spec("hang"), tmp_path / "1.log")
    log.wait_event(1, "progress")
    hung = pool.workers()[0].pid
    pool.cancel(1)
    assert log.wait_final(1).kind == "cancelled"  # it ignores the request: only a kill ends it
    assert pool.wait_ready(WAIT_S)
    assert hung not in [w.pid for w in pool.workers()]
    pool.submit(2, spec("echo"), tmp_path / "2.log")
    assert log.wait_final(2).kind == "succeeded"


def test_cancel_of_a_queued_job_removes_it_without_touching_the_running_one(pool_events, tmp_path) -> None:
    pool, log = pool_events(cpu_workers=1)
    pool.submit(1, spec("sleep", seconds=0.5, steps=5), tmp_path / "1.log")
    pool.submit(2, spec("echo"), tmp_path / "2.log")
    assert pool.cancel(2) is True
    assert log.wait_final(2).kind == "cancelled"
    assert log.wait_final(1).kind == "succeeded"
    assert [e.kind for e in log.of(2)] == ["cancelled"]


def test_a_jobs_prints_logging_and_traceback_end_up_in_its_log_file(pool_events, tmp_path) -> None:
    pool, log = pool_events(cpu_workers=1)
    pool.submit(1, spec("echo", word="hello"), tmp_path / "logs" / "1.log")
    pool.submit(2, spec("crash", how="raise"), tmp_path / "logs" / "2.log")
    log.wait_final(1), log.wait_final(2)
    text = (tmp_path / "logs" / "1.log").read_text()
    assert "echo {'word': 'hello'}" in text  # print()
    assert "INFO standins: echo logged {'word': 'hello'}" in text  # logging
    failed = (tmp_path / "logs" / "2.log").read_text()
    assert "Traceback" in failed and "RuntimeError: crashed on purpose" in failed
    assert "hello" not in failed


def test_jobs_start_in_the_order_they_were_submitted(pool_events, tmp_path) -> None:
    pool, log = pool_events(cpu_workers=1)
    for job_id in range(1, 7):
        pool.submit(job_id, spec("echo", n=job_id), tmp_path / f"{job_id}.log")
    log.wait_final(6)
    assert [e.job_id for e in log.events if e.kind == "started"] == [1, 2, 3, 4, 5, 6]


def test_progress_is_throttled_but_the_last_report_always_arrives(pool_events, tmp_path) -> None:
    pool, log = pool_events(cpu_workers=1)
    pool.submit(1, spec("sleep", seconds=0.5, steps=500), tmp_path / "1.log")
    log.wait_final(1)
    progress = [e for e in log.of(1) if e.kind == "progress"]
    assert 2 <= len(progress) <= log.span_s(1) / PROGRESS_INTERVAL_S + 3  # 500 reports, a few sent
    assert progress[-1].fraction == 1.0 and progress[-1].message == "step 500 of 500"
    kinds = [e.kind for e in log.of(1)]
    assert kinds[0] == "started" and kinds[-1] == "succeeded"


def test_gpu_jobs_wait_for_their_gpu_while_others_use_any_free_worker(pool_events, tmp_path) -> None:
    pool, log = pool_events(devices=["cuda:0"], cpu_workers=1)
    pool.submit(1, spec("sleep", device="cuda:0", seconds=60, steps=600), tmp_path / "1.log")
    log.wait_event(1, "started")
    pool.submit(2, spec("echo", device="cuda:0"), tmp_path / "2.log")
    pool.submit(3, spec("echo"), tmp_path / "3.log")
    assert log.wait_final(3).device == "cpu"
    assert not any(e.job_id == 2 for e in log.events)  # still waiting for cuda:0
    pool.cancel(1)
    assert log.wait_final(2).device == "cuda:0"


def test_close_stops_every_worker(make_pool, tmp_path) -> None:
    pool = make_pool(cpu_workers=2)
    pool.submit(1, spec("hang"), tmp_path / "1.log")
    pids = [w.pid for w in pool.workers()]
    pool.close(timeout=0.5)  # the hanging job ignores the request: it is terminated
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(StudioError, match="closed"):
        pool.submit(2, spec("echo"), tmp_path / "2.log")


def test_a_job_whose_ranks_train_on_other_gpus_holds_their_workers_until_it_ends(
    pool_events, tmp_path
) -> None:
    pool, log = pool_events(devices=["cuda:0", "cuda:1"], cpu_workers=0)
    ranked = spec("sleep", device="cuda:0", seconds=60, steps=600)
    pool.submit(1, dataclasses.replace(ranked, holds=("cuda:1",)), tmp_path / "1.log")
    log.wait_event(1, "started")
    pool.submit(2, spec("echo", device="cuda"), tmp_path / "2.log")  # any GPU: both are taken
    assert {w.device: w.job_id for w in pool.workers()} == {"cuda:0": 1, "cuda:1": 1}
    assert not any(e.job_id == 2 for e in log.events)
    pool.cancel(1)
    assert log.wait_final(2).kind == "succeeded"
    assert all(w.job_id is None for w in pool.workers())
