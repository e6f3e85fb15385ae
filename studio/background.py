"""One process's use of the job machinery over a project: submit, follow, cancel, wait.

The command line and the Python API run every technique step and every measurement as a job
here, exactly as the window does: recorded in the project's database, run in a worker process
bound to its device, with a log file. While it waits, it honours a cancel asked for from
another process (`studio jobs cancel ID`), which is written to the database.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from studio.api import StudioError
from studio.jobs.events import JobEvent
from studio.jobs.manager import JobManager
from studio.jobs.pool import LocalPool
from studio.jobs.spec import JobSpec

if TYPE_CHECKING:
    from studio.project import Project

POLL_SECONDS = 0.25


class JobCancelled(StudioError):
    """The user cancelled the job; nothing of it was kept."""


def make_pool(executor: str, *, device: str = "cpu", workers: int = 1):
    """'local' (worker processes here), 'ray' (a local Ray) or 'ray://HOST:PORT' (a Ray cluster)."""
    if executor == "local":
        gpus = [device] if device.startswith("cuda") else []
        return LocalPool(devices=gpus, cpu_workers=0 if gpus else workers)
    if executor == "ray" or executor.startswith("ray://"):
        from studio.jobs.ray_pool import RayPool

        return RayPool(None if executor == "ray" else executor)
    raise StudioError(f"unknown executor '{executor}': use local, ray, or ray://HOST:PORT")


class BackgroundJobs:
    """A pool and a manager for one project, in this process. Use as a context manager."""

    def __init__(
        self, project: Project, *, device: str = "cpu", workers: int = 1, executor: str = "local"
    ) -> None:
        self._project = project
        pool = make_pool(executor, device=device, workers=workers)
        self.manager = JobManager(project.store, pool, project.logs_dir)

    def __enter__(self) -> BackgroundJobs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.manager.close()

    def run(
        self,
        spec: JobSpec,
        *,
        on_done: Callable[[Any, dict | None], None] | None = None,
        on_progress: Callable[[float, str], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> dict:
        """Submit one job and wait for it; its result, or the job's own error as a StudioError."""
        results: dict[str, Any] = {}
        ended = threading.Event()

        def done(record: Any, result: dict | None) -> None:
            results["result"] = result
            if on_done is not None and result is not None:
                on_done(record, result)

        job_id = self.manager.submit(spec, on_done=done)

        def listen(event: JobEvent) -> None:
            if event.job_id != job_id:
                return
            if event.kind == "progress" and on_progress is not None and event.fraction is not None:
                on_progress(event.fraction, event.message)
            if event.final:
                ended.set()

        unsubscribe = self.manager.subscribe(listen)
        try:
            asked = False
            while not ended.wait(POLL_SECONDS):
                if not asked and self._cancel_wanted(job_id, should_cancel):
                    asked = True
                    self.manager.cancel(job_id)
            record = self.manager.wait(job_id)
        finally:
            unsubscribe()
        if record.state == "succeeded":
            return results.get("result") or {}
        if record.state == "cancelled":
            raise JobCancelled(f"job {job_id} was cancelled; nothing of it was kept")
        raise StudioError(record.error or f"job {job_id} ended {record.state}")

    def _cancel_wanted(self, job_id: int, should_cancel: Callable[[], bool] | None) -> bool:
        if should_cancel is not None and should_cancel():
            return True
        return self._project.store.get_job(job_id).cancel_requested
