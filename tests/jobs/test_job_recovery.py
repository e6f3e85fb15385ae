"""The studio killed while jobs run: reopening the project tells the truth and has lost nothing."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from jobtools import WAIT_S

from studio.jobs.manager import NOT_STARTED_MESSAGE, OWNER_GONE_MESSAGE, JobManager
from studio.project import Project

# A studio session: a project, a manager, one finished job, then slow jobs (two running, one queued).
SESSION = textwrap.dedent(
    """
    import json, sys, threading
    from pathlib import Path

    from studio.jobs.manager import JobManager
    from studio.jobs.pool import LocalPool
    from studio.jobs.spec import JobSpec
    from studio.project import Project


    def job(target, **kwargs):
        return JobSpec(kind="measure", target="standins:" + target, kwargs=kwargs)


    def main():
        project = Project.open(Path(sys.argv[1]))
        pool = LocalPool(devices=[], cpu_workers=2)
        manager = JobManager(project.store, pool, project.logs_dir)
        manager.recover()
        started = threading.Semaphore(0)
        manager.subscribe(lambda event: event.kind == "started" and started.release())
        done = manager.submit(job("echo", n=1))
        manager.wait(done, 60)
        slow = [manager.submit(job("sleep", seconds=600, steps=6000)) for _ in range(3)]
        for _ in range(3):  # the finished job's start, then two slow ones (the third waits in the queue)
            assert started.acquire(timeout=60)
        print(json.dumps({"done": done, "slow": slow, "workers": [w.pid for w in pool.workers()]}), flush=True)
        threading.Event().wait()


    if __name__ == "__main__":
        main()
    """
)


def test_jobs_of_a_killed_studio_are_interrupted_and_earlier_results_survive(tmp_path, make_pool) -> None:
    with Project.create(tmp_path / "p") as project:
        version = project.store.add_version(
            name="baseline",
            format="onnx",
            artifact="a" * 64,
            main_file="m.onnx",
            files=["m.onnx"],
            size_bytes=1,
        )
    script = tmp_path / "session.py"
    script.write_text(SESSION)
    session = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "p")], stdout=subprocess.PIPE, text=True
    )
    workers: list[int] = []
    try:
        report = json.loads(session.stdout.readline())
        workers = report["workers"]
        session.send_signal(signal.SIGKILL)
        session.wait(WAIT_S)
        _wait_until_gone(workers)  # its workers notice and stop: no job keeps running without a studio
        running, queued = report["slow"][:2], report["slow"][2]
        assert _states(tmp_path / "p" / "studio.sqlite", report["slow"]) == ["running", "running", "queued"]

        with Project.open(tmp_path / "p") as project:  # opening it is enough: the owner is gone
            store = project.store
            for job_id in running:
                record = store.get_job(job_id)
                assert record.state == "interrupted" and record.message == OWNER_GONE_MESSAGE
                assert record.finished_at is not None
            left = store.get_job(queued)
            assert left.state == "interrupted" and left.message == NOT_STARTED_MESSAGE

            manager = JobManager(store, make_pool(cpu_workers=1), project.logs_dir)
            try:
                assert manager.recover() == 0  # nothing left to recover
            finally:
                manager.close()
            assert store.get_job(report["done"]).state == "succeeded"
            assert store.get_version(version.id).name == "baseline"
            assert len(store.list_jobs()) == 4
            assert store.integrity_check() == "ok"
    finally:
        if session.poll() is None:
            session.kill()
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _states(database: Path, job_ids: list[int]) -> list[str]:
    """Job states as the killed studio left them, read without opening the project."""
    connection = sqlite3.connect(database)
    try:
        found = dict(connection.execute("SELECT id, state FROM jobs").fetchall())
    finally:
        connection.close()
    return [found[job_id] for job_id in job_ids]


def _wait_until_gone(pids: list[int], timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids):
        assert time.monotonic() < deadline, f"workers still running: {[p for p in pids if _alive(p)]}"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie nobody has reaped yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
