"""The job queue as the project sees it: every job recorded, every change persisted, once.

``submit`` records a queued job and hands it to a pool; one manager thread turns the pool's
events into state changes in the store and fans them out to listeners (the window marshals them
to Qt). Each job reaches exactly one final state, written by whichever thread settles it first
(the manager thread, ``cancel`` for a job that never started, or ``close``); the others see it
settled and only pass the news on.

Each job records this process as its owner, and a heartbeat thread keeps saying that the owner
is still there. A process that dies without ``close`` (killed, or the machine lost its power)
leaves its jobs unfinished in the database; whoever opens the project next turns them
``interrupted`` (``interrupt_abandoned_jobs``), while the jobs of live owners, such as a second
command line working on the same project, are left alone.

The store is used through the few methods below, not imported: the job machinery and the store
are separate layers, and the window hands the manager its project's store.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from studio.api import StudioError
from studio.jobs import liveness
from studio.jobs.events import JobEvent
from studio.jobs.logs import job_log_path
from studio.jobs.spec import JobSpec

log = logging.getLogger(__name__)

PROGRESS_WRITE_INTERVAL_S = 0.5
FINAL_WRITE_ATTEMPTS = 3
NOT_STARTED_MESSAGE = "the studio stopped before this job started"
OWNER_GONE_MESSAGE = "the studio that ran this job stopped"
CLOSED_RUNNING_MESSAGE = "the studio closed while this job was running"
CLOSED_QUEUED_MESSAGE = "the studio closed before this job started"

Listener = Callable[[JobEvent], None]
OnDone = Callable[[Any, "dict | None"], None]
_STOP = object()


class JobStore(Protocol):
    """What the manager needs of a project's store (``studio.store.Store`` has it)."""

    def add_job(self, *, kind: str, **fields: Any) -> Any: ...
    def update_job(self, job_id: int, **changes: Any) -> Any: ...
    def get_job(self, job_id: int) -> Any: ...
    def list_jobs(self, states: Any = None) -> list: ...
    def beat_jobs(self, job_ids: Any) -> int: ...
    def interrupt_job(self, seen: Any, message: str) -> bool: ...


class Pool(Protocol):
    """What the manager needs of a pool (``LocalPool`` and ``RayPool`` have it)."""

    events: queue.Queue

    def check(self, spec: JobSpec) -> None: ...
    def submit(self, job_id: int, spec: JobSpec, log_path: str | Path) -> None: ...
    def cancel(self, job_id: int) -> bool: ...
    def close(self) -> None: ...


@dataclass
class _Active:
    spec: JobSpec
    on_done: OnDone | None
    log_path: Path
    started: bool = False
    fraction: float = 0.0
    message: str = ""  # the last progress message, kept as the job's last word when it succeeds
    last_write: float = float("-inf")


class JobManager:
    """Queue, run and record jobs of one project; call ``recover`` once at start, ``close`` at the end."""

    def __init__(
        self,
        store: JobStore,
        pool: Pool,
        logs_dir: Path,
        *,
        heartbeat_s: float = liveness.HEARTBEAT_INTERVAL_S,
    ) -> None:
        if not 0 < heartbeat_s < liveness.SILENT_OWNER_LIMIT.total_seconds() / 4:
            raise ValueError(
                f"a heartbeat every {heartbeat_s} s would let other studios take this one for gone"
            )
        self._store, self._pool = store, pool
        self._logs_dir = Path(logs_dir)
        self._logs_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._active: dict[int, _Active] = {}
        self._settling: set[int] = set()
        self._listeners: list[Listener] = []
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="studio-job-manager", daemon=True)
        self._thread.start()
        self._heartbeat_s = heartbeat_s
        self._stop_beating = threading.Event()
        self._beating = threading.Thread(target=self._beat, name="studio-job-heartbeat", daemon=True)
        self._beating.start()

    # -- commands ------------------------------------------------------------------------------

    def recover(self) -> int:
        """At start: jobs left running or queued by a studio that stopped become ``interrupted``.

        Jobs of studios still running (another window or command line on the same project) are
        left alone. Returns how many jobs were marked.
        """
        with self._lock:
            if self._active or self._settling:
                raise RuntimeError("recover() must run before the first job is submitted")
        return interrupt_abandoned_jobs(self._store)

    def submit(self, spec: JobSpec, on_done: OnDone | None = None) -> int:
        """Record the job as queued and queue it; ``on_done(record, result)`` runs once it ends."""
        with self._lock:
            if self._closing:
                raise StudioError("the job manager is closed")
        self._pool.check(spec)
        owner = liveness.this_process()
        record = self._store.add_job(
            kind=spec.kind,
            technique=spec.technique,
            params=spec.params,
            input_version_id=spec.input_version_id,
            dataset_id=spec.dataset_id,
            device=spec.device,
            owner_host=owner.host,
            owner_pid=owner.pid,
            owner_started=owner.started,
        )
        log_path = job_log_path(self._logs_dir, record.id)
        with self._lock:
            self._active[record.id] = _Active(spec, on_done, log_path)
        try:
            self._pool.submit(record.id, spec, log_path)
        except Exception as error:
            self._settle(JobEvent("failed", record.id, error=f"the job could not be queued: {error}"))
            raise
        return record.id

    def cancel(self, job_id: int) -> bool:
        """Stop a job: a queued one is cancelled at once, a running one asked, then forced.

        False when the job had already ended (or is not this manager's).
        """
        with self._lock:
            if job_id not in self._active:
                return False
        if self._pool.cancel(job_id):  # it never started: record it now, not when the event arrives
            self._settle(JobEvent("cancelled", job_id))
            self._wait_settled(job_id, None)
        return True

    def wait(self, job_id: int, timeout: float | None = None) -> Any:
        """The job's record once it has ended and its ``on_done`` has run."""
        if not self._wait_settled(job_id, timeout):
            raise TimeoutError(f"job {job_id} did not end within {timeout:g} s")
        return self._store.get_job(job_id)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every job event, from the manager thread; returns unsubscribe."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def active(self) -> list[int]:
        """Jobs queued or running, oldest first."""
        with self._lock:
            return sorted(self._active)

    def close(self) -> None:
        """Stop the pool; jobs that had not ended are recorded as ``interrupted``."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        self._pool.close()
        self._pool.events.put(_STOP)
        self._thread.join()
        self._stop_beating.set()
        self._beating.join()
        with self._lock:
            left = list(self._active.items())
        for job_id, active in left:
            message = CLOSED_RUNNING_MESSAGE if active.started else CLOSED_QUEUED_MESSAGE
            event = self._settle(JobEvent("interrupted", job_id, message=message))
            if event is not None:
                self._notify(event)

    def __enter__(self) -> JobManager:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the heartbeat thread --------------------------------------------------------------------

    def _beat(self) -> None:
        """Keep saying that this process still owns its unfinished jobs, in one write each time."""
        while not self._stop_beating.wait(self._heartbeat_s):
            job_ids = self.active()
            if not job_ids:
                continue
            try:
                self._store.beat_jobs(job_ids)
            except Exception:  # a busy database frees up; the next beat comes well within the limit
                log.warning("could not refresh the heartbeat of jobs %s", job_ids, exc_info=True)

    # -- the manager thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            event = self._pool.events.get()
            if event is _STOP:
                return
            try:
                self._handle(event)
            except Exception:  # one bad event must not stop the recording of all the others
                log.exception("could not handle %s", event)

    def _handle(self, event: JobEvent) -> None:
        if event.final:
            settled = self._settle(event)
            if settled is None:  # settled elsewhere (a cancel before start): pass the news on
                self._wait_settled(event.job_id, None)
            self._notify(settled or event)
            return
        with self._lock:
            active = self._active.get(event.job_id)
        if active is None:
            return
        if event.kind == "started":
            active.started = True
            self._write(event.job_id, state="running", device=event.device, log_path=str(active.log_path))
        elif event.kind == "progress":
            active.fraction = event.fraction or 0.0
            active.message = event.message or active.message
            now = time.monotonic()
            if now - active.last_write >= PROGRESS_WRITE_INTERVAL_S:
                active.last_write = now
                self._write(event.job_id, progress=active.fraction, message=event.message)
        self._notify(event)

    def _settle(self, event: JobEvent) -> JobEvent | None:
        """Record the job's final state, once; None when another thread already did."""
        with self._lock:
            active = self._active.pop(event.job_id, None)
            if active is None:
                return None
            self._settling.add(event.job_id)
        try:
            event = self._run_on_done(active, event)
            self._write(event.job_id, final=True, **_final_changes(event, active))
            return event
        finally:
            with self._lock:
                self._settling.discard(event.job_id)
                self._settled.notify_all()

    def _run_on_done(self, active: _Active, event: JobEvent) -> JobEvent:
        """Let the caller record the result; a success it cannot record is a failure."""
        if active.on_done is None:
            return event
        record = self._store.get_job(event.job_id)
        if dataclasses.is_dataclass(record):
            record = dataclasses.replace(record, **_final_changes(event, active))
        try:
            active.on_done(record, event.result if event.kind == "succeeded" else None)
        except Exception as error:
            log.exception("recording the outcome of job %s failed", event.job_id)
            if event.kind == "succeeded":
                reason = str(error) if isinstance(error, StudioError) else f"{type(error).__name__}: {error}"
                return JobEvent("failed", event.job_id, error=f"the result could not be recorded: {reason}")
        return event

    def _wait_settled(self, job_id: int, timeout: float | None) -> bool:
        with self._settled:
            return self._settled.wait_for(
                lambda: job_id not in self._active and job_id not in self._settling, timeout
            )

    def _write(self, job_id: int, *, final: bool = False, **changes: Any) -> None:
        attempts = FINAL_WRITE_ATTEMPTS if final else 1
        for attempt in range(attempts):
            try:
                self._store.update_job(job_id, **changes)
                return
            except Exception:
                if attempt == attempts - 1:
                    log.exception("could not record %s for job %s", changes, job_id)
                else:
                    time.sleep(0.2 * (attempt + 1))  # a busy database frees up; try again shortly

    def _notify(self, event: JobEvent) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:
                log.exception("a job listener failed on %s", event)


def interrupt_abandoned_jobs(store: JobStore) -> int:
    """Turn ``interrupted`` every unfinished job whose owner is gone; returns how many.

    Any process that opens a project calls this: the owner of such a job died without recording
    its end, and nobody else ever will. Queued jobs are not run again: what should have happened
    with their results died with their owner. When the database cannot be written now (busy, or
    read-only), the rest is left for whoever opens the project next.
    """
    count = 0
    for record in store.list_jobs(["queued", "running"]):
        if not liveness.owner_gone(
            record.owner_host, record.owner_pid, record.owner_started, record.owner_heartbeat
        ):
            continue
        message = OWNER_GONE_MESSAGE if record.state == "running" else NOT_STARTED_MESSAGE
        try:
            if store.interrupt_job(record, message):
                count += 1
        except StudioError as error:
            log.warning("could not mark job %s interrupted: %s", record.id, error)
            break
    return count


def _final_changes(event: JobEvent, active: _Active) -> dict[str, Any]:
    if event.kind == "succeeded":
        return {"state": "succeeded", "progress": 1.0, "message": active.message}
    changes: dict[str, Any] = {"state": event.kind, "progress": active.fraction}
    if event.kind == "failed":
        changes["error"] = event.error or "the job failed"
    elif event.kind == "cancelled":
        changes["message"] = "cancelled by the user"
    else:
        changes["message"] = event.message
    return changes
