"""Long-lived worker processes on this machine: one per GPU, plus CPU workers.

Workers are started with ``spawn`` and bind their device before importing anything heavy. One
monitor thread watches every worker's event pipe and process sentinel at once, so a worker that
dies (a signal, an exit code, the out-of-memory killer) is noticed at once, its job fails with
the reason, and a fresh worker takes its place. Cancel asks first (a flag the job checks at
every progress report) and terminates the worker after a grace period.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import multiprocessing
import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import wait

from studio.api import StudioError
from studio.jobs.events import JobEvent
from studio.jobs.local_worker import Task, WorkerProcess, exit_reason, stop_processes
from studio.jobs.logs import append_line
from studio.jobs.spec import JobSpec

log = logging.getLogger(__name__)

CANCEL_GRACE_S = 3.0
CLOSE_TIMEOUT_S = 2.0
MAX_FAILED_STARTS = 3  # a worker that dies this many times before it is ready is not started again
_IDLE_WAKE_S = 1.0


@dataclass(frozen=True)
class WorkerInfo:
    device: str
    pid: int | None
    ready: bool
    job_id: int | None


class LocalPool:
    """Worker processes on this machine; events about jobs arrive on ``events``.

    ``devices`` lists the GPUs to run workers on ("cuda:0", ...); None detects them. A job asking
    for a device waits for that device's worker; the others go to any free worker, first come
    first served.
    """

    def __init__(
        self,
        devices: list[str] | None = None,
        cpu_workers: int | None = None,
        *,
        cancel_grace_s: float = CANCEL_GRACE_S,
    ) -> None:
        self.events: queue.Queue[JobEvent] = queue.Queue()
        self._grace = cancel_grace_s
        self._ctx = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._pending: deque[Task] = deque()
        self._closing = False
        self._wake_reader, self._wake_writer = self._ctx.Pipe(duplex=False)
        self._wake_pending = False
        slots = _gpu_devices(devices) + ["cpu"] * _cpu_worker_count(cpu_workers)
        if not slots:
            raise ValueError("a pool needs at least one worker")
        self._workers = [WorkerProcess(self._ctx, device) for device in slots]
        self._monitor = threading.Thread(target=self._watch, name="studio-pool-monitor", daemon=True)
        self._monitor.start()
        atexit.register(self.close)

    # -- what callers use ----------------------------------------------------------------------

    @property
    def devices(self) -> list[str]:
        with self._lock:
            return [w.device for w in self._workers]

    def check(self, spec: JobSpec) -> None:
        """Refuse a job no worker of this pool can ever run, before anything is recorded."""
        with self._lock:
            self._check(spec.device)

    def _check(self, device: str | None) -> None:
        working = [w.device for w in self._workers if not w.broken]
        if not any(_can_run(have, device) for have in working):
            have = ", ".join(sorted(set(working))) or "nothing: no worker could start"
            raise StudioError(
                f"no worker can run a job on {device or 'any device'}; the workers run on {have}"
            )

    def submit(self, job_id: int, spec: JobSpec, log_path: str | os.PathLike) -> None:
        with self._lock:
            if self._closing:
                raise StudioError("the job pool is closed")
            self._check(spec.device)
            self._pending.append(Task(job_id, spec, str(log_path)))
            self._dispatch()

    def cancel(self, job_id: int) -> bool:
        """Ask a job to stop; True when it had not started (it is removed, no worker is touched)."""
        with self._lock:
            for task in self._pending:
                if task.job_id == job_id:
                    self._pending.remove(task)
                    self.events.put(JobEvent("cancelled", job_id))
                    return True
            for w in self._workers:
                if w.task is not None and w.task.job_id == job_id and w.cancel_at is None:
                    w.cancel.set()
                    w.cancel_at = time.monotonic()
        self._wake()
        return False

    def workers(self) -> list[WorkerInfo]:
        with self._lock:
            return [
                WorkerInfo(w.device, w.process.pid, w.ready, w.task.job_id if w.task else w.held_for)
                for w in self._workers
            ]

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until every worker has started and bound its device: the pool at full strength."""
        with self._changed:
            return self._changed.wait_for(lambda: all(w.ready or w.broken for w in self._workers), timeout)

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Stop every worker: politely, then by force. Unfinished jobs get no further events."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            self._pending.clear()
            workers = list(self._workers)
            self._wake_writer.send_bytes(b"!")
        atexit.unregister(self.close)
        self._monitor.join()
        for w in workers:
            w.cancel.set()
            with contextlib.suppress(OSError):
                w.tasks.send(None)
        stop_processes([w.process for w in workers], timeout)
        for w in workers:
            w.close()
        self._wake_reader.close()
        self._wake_writer.close()

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the monitor thread --------------------------------------------------------------------

    def _wake(self) -> None:
        """Make the monitor look again now (a cancel to time, a job to hand out); at most one byte waits."""
        with self._lock:
            if self._closing or self._wake_pending:
                return
            self._wake_pending = True
            self._wake_writer.send_bytes(b"!")

    def _watch(self) -> None:
        while True:
            try:
                if self._watch_once():
                    return
            except Exception:  # keep watching the other workers; this must never stop silently
                log.exception("the worker pool's monitor hit an error")
                time.sleep(0.1)

    def _watch_once(self) -> bool:
        """Wait for a message, a worker's end, a wake-up or a deadline, and act on it; True once closed."""
        with self._lock:
            if self._closing:
                return True
            handles = {}
            for w in self._workers:
                if w.broken:
                    continue
                handles[w.process.sentinel] = w
                if w.events_open:
                    handles[w.events] = w
            timeout = self._time_to_next_deadline()
        ready = wait([self._wake_reader, *handles], timeout)
        with self._lock:
            if self._closing:
                return True
            self._handle_ready(ready, handles)
            self._enforce_deadlines()
            self._dispatch()
        return False

    def _handle_ready(self, ready: list, handles: dict) -> None:
        if self._wake_reader in ready:
            self._wake_reader.recv_bytes()
            self._wake_pending = False
        # Messages first: a result sent just before a worker died still counts.
        for handle in sorted(ready, key=lambda h: isinstance(h, int)):
            w = handles.get(handle)
            if w is None or w not in self._workers:
                continue
            if handle is w.events:
                self._drain(w)
            else:
                self._replace(w)

    def _drain(self, w: WorkerProcess) -> None:
        while w.events_open:
            try:
                if not w.events.poll():
                    return
                message = w.events.recv()
            except (EOFError, OSError):
                w.events_open = False
                return
            self._on_message(w, message)

    def _on_message(self, w: WorkerProcess, message: tuple) -> None:
        kind = message[0]
        if kind == "ready":
            w.ready = True
            self._changed.notify_all()
            return
        job_id = message[1]
        if w.task is None or w.task.job_id != job_id:
            return  # a late word about a job the pool has already settled
        if kind == "started":
            w.started_at = time.monotonic()
            self.events.put(JobEvent("started", job_id, device=w.device))
        elif kind == "progress":
            fraction, text = message[2], message[3]
            self.events.put(JobEvent("progress", job_id, fraction, text, device=w.device))
        else:
            self._finish(w, kind, *message[2:])

    def _finish(self, w: WorkerProcess, kind: str, payload=None) -> None:
        job_id = w.task.job_id
        if w.cancel_at is not None:
            event = JobEvent("cancelled", job_id, device=w.device)
        elif kind == "succeeded":
            event = JobEvent("succeeded", job_id, 1.0, result=payload, device=w.device)
        elif kind == "failed":
            event = JobEvent("failed", job_id, error=payload, device=w.device)
        else:
            event = JobEvent("cancelled", job_id, device=w.device)
        w.start_job(None)
        for held in self._workers:  # the GPUs its other ranks trained on are free again
            if held.held_for == job_id:
                held.held_for = None
        self.events.put(event)

    def _replace(self, w: WorkerProcess) -> None:
        """The worker's process ended: settle its job, then start a fresh worker in its place."""
        self._drain(w)
        w.process.join(0.1)
        if w.task is not None:
            reason = self._death_reason(w)
            if w.stop_reason is None:  # a stop the pool chose has written its own line already
                append_line(w.task.log_path, f"failed: {reason}")
            self._finish(w, "failed", reason)
        pid = w.process.pid
        w.close()
        failed_starts = 0 if w.ready else w.failed_starts + 1
        if failed_starts >= MAX_FAILED_STARTS:
            log.error(
                "the worker for %s died %d times while starting; it is not started again",
                w.device,
                failed_starts,
            )
            w.broken = True
            self._changed.notify_all()
            self._fail_unrunnable()
            return
        fresh = WorkerProcess(self._ctx, w.device, failed_starts)
        fresh.held_for = w.held_for  # a rank may still be training on that GPU
        self._workers[self._workers.index(w)] = fresh
        log.info("worker for %s replaced (pid %s ended)", w.device, pid)

    def _fail_unrunnable(self) -> None:
        for task in list(self._pending):
            try:
                self._check(task.spec.device)
            except StudioError as error:
                self._pending.remove(task)
                self.events.put(JobEvent("failed", task.job_id, error=str(error)))

    def _death_reason(self, w: WorkerProcess) -> str:
        if w.stop_reason == "timeout":
            return f"the job took longer than its limit of {w.task.spec.timeout_s:g} s and was stopped"
        return exit_reason(w.process.exitcode)

    def _time_to_next_deadline(self) -> float:
        deadlines = [d for w in self._workers for d in w.deadlines(self._grace)]
        if not deadlines:
            return _IDLE_WAKE_S
        return min(_IDLE_WAKE_S, max(0.0, min(deadlines) - time.monotonic()))

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for w in self._workers:
            w.enforce_deadlines(now, self._grace)

    def _dispatch(self) -> None:
        for task in list(self._pending):
            w = self._free_worker(task.spec.device)
            held = self._held_workers(task.spec.holds)
            if w is None or held is None:
                continue
            w.cancel.clear()  # only here, before the task is sent, so that no cancel is lost
            w.start_job(task)
            try:
                w.tasks.send((task.job_id, task.spec.target, task.spec.kwargs, task.log_path))
            except OSError:  # the worker is dying; its sentinel will fire and it will be replaced
                w.start_job(None)
                continue
            self._pending.remove(task)
            for h in held:
                h.held_for = task.job_id

    def _held_workers(self, devices: tuple[str, ...]) -> list[WorkerProcess] | None:
        """The workers of the GPUs a job's other ranks need, all free; None while one is busy.
        A GPU this pool has no worker for is nobody else's here, and needs no holding."""
        held = []
        for device in devices:
            workers = [w for w in self._workers if w.device == device and not w.broken]
            free = [w for w in workers if w.task is None and w.held_for is None]
            if workers and not free:
                return None
            held.extend(free[:1])
        return held

    def _free_worker(self, device: str | None) -> WorkerProcess | None:
        free = [
            w
            for w in self._workers
            if w.task is None
            and w.held_for is None
            and not w.broken
            and _can_run(w.device, device)
            and w.process.is_alive()
        ]
        free.sort(key=lambda w: (w.device != "cpu", not w.ready))  # keep GPUs for jobs that need them
        return free[0] if free else None


def _can_run(worker_device: str, wanted: str | None) -> bool:
    if wanted is None:
        return True
    if wanted == "cuda":
        return worker_device.startswith("cuda:")
    return worker_device == wanted


def _gpu_devices(devices: list[str] | None) -> list[str]:
    if devices is None:
        from studio.core.hardware import cuda_devices

        return [f"cuda:{d['index']}" for d in cuda_devices()]
    for device in devices:
        if not (device.startswith("cuda:") and device[5:].isdigit()):
            raise ValueError(f"a GPU worker's device is 'cuda:N', not {device!r}")
    return list(devices)


def _cpu_worker_count(cpu_workers: int | None) -> int:
    if cpu_workers is None:
        from studio.core.hardware import physical_cores

        return max(1, physical_cores() - 1)  # one core stays with the window
    if cpu_workers < 0:
        raise ValueError("the number of CPU workers cannot be negative")
    return cpu_workers
