"""Helpers for the job tests: stand-in job specs and a log of events that can be waited on.

Tests never sleep to synchronise: they wait on the events a pool or manager sends, with a
timeout, so a slow machine makes them slower, not flaky. Nor do they time anything: how a job
ended (by itself, or killed) is read from what it left behind, not from a stopwatch.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

from studio.jobs.events import JobEvent
from studio.jobs.spec import JobSpec

WAIT_S = 60.0  # generous: other work may be loading this machine; a passing test never waits this long
TEST_GRACE_S = 1.0


def spec(
    target: str, *, kind: str = "measure", device: str | None = None, timeout_s: float | None = None, **kwargs
) -> JobSpec:
    """A job running one of the stand-ins in ``standins.py``."""
    return JobSpec(kind=kind, target=f"standins:{target}", kwargs=kwargs, device=device, timeout_s=timeout_s)


class EventLog:
    """Every event seen, in order, with waiting on a condition over them."""

    def __init__(self) -> None:
        self.events: list[JobEvent] = []
        self.arrived: list[float] = []  # time.monotonic() when each event arrived here
        self._changed = threading.Condition()

    def __call__(self, event: JobEvent) -> None:
        with self._changed:
            self.events.append(event)
            self.arrived.append(time.monotonic())
            self._changed.notify_all()

    def span_s(self, job_id: int) -> float:
        """Seconds from the job's first event to its last, as they arrived."""
        with self._changed:
            times = [t for e, t in zip(self.events, self.arrived, strict=True) if e.job_id == job_id]
        return times[-1] - times[0]

    def wait_for(self, predicate: Callable[[list[JobEvent]], bool], timeout: float = WAIT_S) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.events), timeout):
                raise AssertionError(f"timed out; events so far: {self.events}")

    def wait_event(self, job_id: int, kind: str, timeout: float = WAIT_S) -> JobEvent:
        self.wait_for(lambda events: any(e.job_id == job_id and e.kind == kind for e in events), timeout)
        return next(e for e in self.events if e.job_id == job_id and e.kind == kind)

    def wait_final(self, job_id: int, timeout: float = WAIT_S) -> JobEvent:
        self.wait_for(lambda events: any(e.job_id == job_id and e.final for e in events), timeout)
        return next(e for e in self.events if e.job_id == job_id and e.final)

    def of(self, job_id: int) -> list[JobEvent]:
        with self._changed:
            return [e for e in self.events if e.job_id == job_id]


class PoolEvents(EventLog):
    """An EventLog fed by a pool's event queue, for tests of a pool without a manager."""

    def __init__(self, pool) -> None:
        super().__init__()
        self._pool = pool
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        while not self._stop.is_set():
            try:
                self(self._pool.events.get(timeout=0.1))
            except queue.Empty:
                continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def cancelled_cooperatively(log_path: str | Path) -> bool:
    """Whether the sleep stand-in stopped by itself: it writes this line to its log when asked to stop."""
    log = Path(log_path)
    return log.is_file() and "stopping at step" in log.read_text()
