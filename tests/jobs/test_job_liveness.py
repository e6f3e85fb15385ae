"""A job whose owning process is gone is interrupted by whoever opens the project; a live one's is not.

Owners here are real processes: this test process, a ``sleep`` that is still running, and short
Python processes that have exited (reaped, or not yet: a zombie). Jobs are recorded in a real
project database and the project is really reopened.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from jobtools import WAIT_S, EventLog, spec
from sqlalchemy import text

from studio.jobs import liveness
from studio.jobs.manager import NOT_STARTED_MESSAGE, OWNER_GONE_MESSAGE, JobManager
from studio.project import Project
from studio.store import JobRecord, Store

ELSEWHERE = "another-machine.invalid"

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="start times are read from /proc"
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    with Project.create(tmp_path / "p"):
        pass
    return tmp_path / "p"


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen]:
    """A live process that is not this one."""
    process = subprocess.Popen(["sleep", "600"])
    yield process
    process.kill()
    process.wait()


def test_a_job_of_an_owner_that_exited_is_interrupted_on_open(folder: Path) -> None:
    owner = _exited_owner()
    with Project.open(folder) as project:
        running = _add(project.store, owner, state="running")
        queued = _add(project.store, owner)

    with Project.open(folder) as project:
        ran, waited = project.store.get_job(running.id), project.store.get_job(queued.id)
    assert (ran.state, ran.message) == ("interrupted", OWNER_GONE_MESSAGE)
    assert (waited.state, waited.message) == ("interrupted", NOT_STARTED_MESSAGE)
    assert ran.finished_at is not None and waited.finished_at is not None


def test_jobs_of_live_owners_are_left_alone_by_open_and_recover(
    folder: Path, sleeper: subprocess.Popen, make_pool
) -> None:
    other = liveness.Owner(socket.gethostname(), sleeper.pid, liveness.start_token(sleeper.pid))
    with Project.open(folder) as project:
        mine = _add(project.store, liveness.this_process(), state="running")
        theirs = _add(project.store, other, state="running")
        waiting = _add(project.store, other)

    with Project.open(folder) as project:
        manager = JobManager(project.store, make_pool(cpu_workers=1), project.logs_dir)
        try:
            assert manager.recover() == 0
        finally:
            manager.close()
        states = [project.store.get_job(job.id).state for job in (mine, theirs, waiting)]
    assert states == ["running", "running", "queued"]


def test_a_reused_pid_is_not_the_owner(folder: Path, sleeper: subprocess.Popen) -> None:
    """The PID is alive, but the process holding it started at another time: the owner is gone."""
    token = liveness.start_token(sleeper.pid)
    assert token is not None
    boot, ticks = token.rsplit(":", 1)
    impostor = liveness.Owner(socket.gethostname(), sleeper.pid, f"{boot}:{int(ticks) + 1}")
    me = liveness.this_process()
    with Project.open(folder) as project:
        reused = _add(project.store, impostor, state="running")
        earlier_boot = _add(project.store, liveness.Owner(me.host, me.pid, f"another-boot:{ticks}"))

    with Project.open(folder) as project:
        assert project.store.get_job(reused.id).state == "interrupted"
        assert project.store.get_job(earlier_boot.id).state == "interrupted"


def test_an_owner_that_exited_but_was_not_yet_reaped_is_gone(folder: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "input()"], stdin=subprocess.PIPE)
    try:
        owner = liveness.Owner(socket.gethostname(), child.pid, liveness.start_token(child.pid))
        child.stdin.close()  # it reads end of file and exits; nobody waits for it yet
        _wait_until(lambda: _zombie(child.pid))
        with Project.open(folder) as project:
            job = _add(project.store, owner, state="running")
        with Project.open(folder) as project:
            assert project.store.get_job(job.id).state == "interrupted"
    finally:
        child.wait()


def test_an_owner_on_another_host_is_judged_by_its_heartbeat(folder: Path) -> None:
    owner = liveness.Owner(ELSEWHERE, os.getpid(), "boot:1")  # its PID means nothing here
    with Project.open(folder) as project:
        silent = _add(project.store, owner, state="running")
        fresh = _add(project.store, owner, state="running")
        silent_queued = _add(project.store, owner)
        stale = datetime.now(timezone.utc) - liveness.SILENT_OWNER_LIMIT - timedelta(minutes=1)
        _set_heartbeat(project.store, stale, silent.id, silent_queued.id)

    with Project.open(folder) as project:
        assert project.store.get_job(silent.id).state == "interrupted"
        assert project.store.get_job(silent_queued.id).message == NOT_STARTED_MESSAGE
        assert project.store.get_job(fresh.id).state == "running"


def test_a_job_with_no_owner_recorded_is_left_behind(folder: Path) -> None:
    """As a studio that recorded no owners left it: nothing can finish it."""
    with Project.open(folder) as project:
        job = project.store.add_job(kind="optimize")
        project.store.update_job(job.id, state="running")
    with Project.open(folder) as project:
        assert project.store.get_job(job.id).state == "interrupted"


def test_the_owner_rule_at_its_edges() -> None:
    me = liveness.this_process()
    now = datetime.now(timezone.utc)
    limit = liveness.SILENT_OWNER_LIMIT
    assert not liveness.owner_gone(me.host, me.pid, me.started, None)
    assert not liveness.owner_gone(me.host, me.pid, None, None)  # no start time known: the PID decides
    assert liveness.owner_gone(me.host, 0, None, now)
    assert liveness.owner_gone(None, me.pid, me.started, now)
    assert not liveness.owner_gone(ELSEWHERE, me.pid, me.started, now - limit, now=now)
    assert liveness.owner_gone(ELSEWHERE, me.pid, me.started, now - limit - timedelta(seconds=1), now=now)
    assert liveness.owner_gone(ELSEWHERE, me.pid, me.started, None, now=now)


def test_the_manager_records_its_own_process_as_owner_and_keeps_its_heartbeat(project, make_pool) -> None:
    pool = make_pool(cpu_workers=1)
    manager = JobManager(project.store, pool, project.logs_dir, heartbeat_s=0.05)
    log = EventLog()
    manager.subscribe(log)
    try:
        job_id = manager.submit(spec("sleep", seconds=600, steps=6000))
        first = project.store.get_job(job_id)
        me = liveness.this_process()
        assert (first.owner_host, first.owner_pid, first.owner_started) == (me.host, me.pid, me.started)
        log.wait_event(job_id, "started")
        running = project.store.get_job(job_id)
        worker = next(w.pid for w in pool.workers() if w.job_id == job_id)
        assert running.owner_pid == me.pid != worker  # the worker computes, this process records
        _wait_until(lambda: project.store.get_job(job_id).owner_heartbeat > first.owner_heartbeat)
    finally:
        manager.close()
    ended = project.store.get_job(job_id)
    assert ended.state == "interrupted"  # close() ends its own jobs, as before


# -- helpers -----------------------------------------------------------------------------------------


def _exited_owner() -> liveness.Owner:
    """The owner record of a real process that has since exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "input()"], stdin=subprocess.PIPE)
    owner = liveness.Owner(socket.gethostname(), child.pid, liveness.start_token(child.pid))
    child.communicate(b"\n", timeout=WAIT_S)
    assert owner.started is not None
    return owner


def _add(store: Store, owner: liveness.Owner, *, state: str = "queued") -> JobRecord:
    job = store.add_job(
        kind="optimize", owner_host=owner.host, owner_pid=owner.pid, owner_started=owner.started
    )
    return job if state == "queued" else store.update_job(job.id, state=state)


def _set_heartbeat(store: Store, when: datetime, *job_ids: int) -> None:
    stamp = when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    with store.engine.begin() as connection:
        for job_id in job_ids:
            connection.execute(
                text("UPDATE jobs SET owner_heartbeat = :stamp WHERE id = :id"),
                {"stamp": stamp, "id": job_id},
            )


def _zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"


def _wait_until(condition, timeout: float = WAIT_S) -> None:
    """Poll ``condition`` until it holds; a slow machine makes this slower, never wrong."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
