"""A Ray task's log comes home while it runs, not only with its outcome (a real local Ray)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from jobtools import WAIT_S, EventLog, spec

from studio.jobs.manager import JobManager
from studio.project import Project

pytest.importorskip("ray", reason="ray is not installed (pip install '.[ray]')")
pytestmark = pytest.mark.slow


def test_a_running_ray_jobs_log_grows_on_this_machine(tmp_path: Path) -> None:
    from studio.jobs.ray_pool import RayPool

    with Project.create(tmp_path / "p") as project:
        pool = RayPool("ray", num_cpus=1, include_dashboard=False, cancel_grace_s=5.0)
        manager = JobManager(project.store, pool, project.logs_dir)
        events = EventLog()
        manager.subscribe(events)
        try:
            job_id = manager.submit(spec("sleep", seconds=120, steps=1200))
            events.wait_for(lambda seen: any(e.job_id == job_id and e.kind == "progress" for e in seen))
            log = project.logs_dir / f"job-{job_id}.log"
            deadline = time.monotonic() + WAIT_S
            while "] step 1 of 1200" not in (log.read_text() if log.is_file() else ""):
                assert time.monotonic() < deadline, "no progress line reached the log while the job ran"
                time.sleep(0.2)
            assert project.store.get_job(job_id).state == "running"  # it came while the job ran
            manager.cancel(job_id)
            record = manager.wait(job_id, WAIT_S)
        finally:
            manager.close()
        text = log.read_text()
        assert record.state == "cancelled"
        assert text.count(f"job {job_id}: standins:sleep on Ray node") == 1  # streamed once, not again
        assert text.count("] step 1 of 1200\n") == 1
        assert "cancelled after" in text
