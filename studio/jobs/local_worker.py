"""One local worker process as the pool sees it: its pipes, its cancel flag, its job and deadlines.

The pool's monitor thread owns these objects (it touches them only under the pool's lock); the
process on the other end runs ``studio.jobs.runner.worker_main``.
"""

from __future__ import annotations

import contextlib
import signal
import time
from dataclasses import dataclass

from studio.jobs.logs import append_line
from studio.jobs.runner import worker_main
from studio.jobs.spec import JobSpec

KILL_AFTER_TERMINATE_S = 1.0
_SIGNAL_HINTS = {
    "SIGKILL": " (out of memory, or stopped from outside)",
    "SIGSEGV": " (a crash in native code)",
    "SIGBUS": " (a crash in native code)",
}
_STOP_LINES = {
    "cancel": "the job did not stop within its grace period after the cancel; its worker is terminated",
    "timeout": "the job reached its time limit; its worker is terminated",
}


@dataclass(frozen=True)
class Task:
    job_id: int
    spec: JobSpec
    log_path: str


class WorkerProcess:
    """One worker process and what the pool knows about it; touched only under the pool's lock."""

    def __init__(self, ctx, device: str, failed_starts: int = 0) -> None:
        self.failed_starts = failed_starts
        self.broken = False
        tasks_reader, self.tasks = ctx.Pipe(duplex=False)
        self.events, events_writer = ctx.Pipe(duplex=False)
        self.cancel = ctx.Event()
        self.device = device
        self.process = ctx.Process(
            target=worker_main,
            args=(device, tasks_reader, events_writer, self.cancel),
            name=f"studio-worker-{device}",
        )
        self.process.start()
        tasks_reader.close()
        events_writer.close()
        self.ready = False
        self.events_open = True
        self.held_for: int | None = None  # a job whose rank trains on this GPU, run by another worker
        self.start_job(None)

    def start_job(self, task: Task | None) -> None:
        self.task = task
        self.started_at: float | None = None
        self.cancel_at: float | None = None
        self.stop_reason: str | None = None  # why the pool ended this process: "cancel" or "timeout"
        self.terminated_at: float | None = None

    def deadlines(self, grace: float) -> list[float]:
        timeout = self.task.spec.timeout_s if self.task else None
        found = []
        if self.terminated_at is not None:
            found.append(self.terminated_at + KILL_AFTER_TERMINATE_S)
        elif self.cancel_at is not None:
            found.append(self.cancel_at + grace)
        elif timeout is not None and self.started_at is not None:
            found.append(self.started_at + timeout)
        return found

    def over_time(self, now: float) -> bool:
        timeout = self.task.spec.timeout_s if self.task else None
        return timeout is not None and self.started_at is not None and now - self.started_at >= timeout

    def enforce_deadlines(self, now: float, grace: float) -> None:
        """Terminate a job past its cancel grace or time limit; kill a process that ignores that."""
        if self.task is None or self.broken or not self.process.is_alive():
            return
        if self.terminated_at is not None:
            if now - self.terminated_at >= KILL_AFTER_TERMINATE_S:
                self.process.kill()
        elif self.cancel_at is not None and now - self.cancel_at >= grace:
            self.stop("cancel")
        elif self.over_time(now):
            self.stop("timeout")

    def stop(self, reason: str) -> None:
        self.stop_reason, self.terminated_at = reason, time.monotonic()
        if self.task is not None:  # the job cannot say it any more: its log ends with why
            append_line(self.task.log_path, _STOP_LINES.get(reason, f"the worker was stopped ({reason})"))
        with contextlib.suppress(OSError):
            self.process.terminate()

    def close(self) -> None:
        for connection in (self.tasks, self.events):
            with contextlib.suppress(OSError):
                connection.close()


def exit_reason(code: int | None, who: str = "worker") -> str:
    """How a process ended, in words: "worker killed by SIGKILL", "rank 1 on cpu exited with code 3"."""
    if code is None:
        return f"{who} stopped responding"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"{who} killed by {name}{_SIGNAL_HINTS.get(name, '')}"
    return f"{who} exited with code {code}"


def stop_processes(processes: list, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.terminate()
            process.join(KILL_AFTER_TERMINATE_S)
        if process.is_alive():
            process.kill()
            process.join()
