"""The pool's interface over a Ray cluster: the same jobs, on other machines' CPUs and GPUs.

A remote task runs the job's target exactly as a local worker does (``runner.run_target``), but
it never sees this machine's files or database: its output folder is a scratch folder there,
zipped and sent back as bytes, and unpacked here into the folder the job asked for before the
job is reported as succeeded. Its log comes home while it runs, a chunk of whole lines every
second, and the rest with the outcome. Progress, log chunks and the cancel flag go through one
small actor. A cooperative cancel is asked first; after the grace period the task is
cancelled by force (Ray kills its worker).

Ray is imported only when a ``RayPool`` is made: it is an optional extra (``pip install .[ray]``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import queue
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from studio.api import StudioError
from studio.jobs.events import JobEvent
from studio.jobs.spec import JobSpec

log = logging.getLogger(__name__)

CANCEL_GRACE_S = 3.0
POLL_S = 0.05
CANCEL_CHECK_INTERVAL_S = 0.2
LOG_SEND_INTERVAL_S = 1.0
LOG_LIMIT_BYTES = 4 << 20  # the most log text one chunk carries; a flood beyond it is left out
_LOCAL_ADDRESSES = (None, "", "ray", "local")


@dataclass
class _Task:
    job_id: int
    spec: JobSpec
    log_path: Path
    ref: Any
    started_at: float | None = None
    cancel_at: float | None = None
    forced: bool = False
    timed_out: bool = False


class RayPool:
    """Jobs as Ray tasks; ``address`` is a cluster ("ray://host:10001", "auto") or None/"ray" for a
    local Ray started here. ``init_kwargs`` go to ``ray.init`` (``num_cpus=2`` in tests)."""

    def __init__(
        self, address: str | None = None, *, cancel_grace_s: float = CANCEL_GRACE_S, **init_kwargs: Any
    ) -> None:
        try:
            import ray
        except ImportError as error:
            raise StudioError(
                "running jobs on Ray needs the ray extra: pip install 'model-optimization-studio[ray]'"
            ) from error
        self._ray = ray
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            ray.init(address=None if address in _LOCAL_ADDRESSES else address, **init_kwargs)
        self.events: queue.Queue[JobEvent] = queue.Queue()
        self._grace = cancel_grace_s
        self._has_gpus = ray.cluster_resources().get("GPU", 0) > 0
        self._channel = ray.remote(num_cpus=0)(_Channel).remote()
        self._remote = ray.remote(max_retries=0)(run_remote)
        self._lock = threading.Lock()
        self._tasks: dict[int, _Task] = {}
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="studio-ray-pool", daemon=True)
        self._thread.start()

    # -- the pool interface ----------------------------------------------------------------------

    def check(self, spec: JobSpec) -> None:
        """Every job fits a Ray cluster: GPU jobs run on a GPU where it has one, on a CPU otherwise."""
        if self._closing.is_set():
            raise StudioError("the job pool is closed")

    def submit(self, job_id: int, spec: JobSpec, log_path: str | os.PathLike) -> None:
        self.check(spec)
        wants_gpu = bool(spec.device and spec.device.startswith("cuda") and self._has_gpus)
        options = {"num_gpus": 1} if wants_gpu else {"num_cpus": 1}
        ref = self._remote.options(**options).remote(
            job_id, spec.target, spec.kwargs, spec.output_dir, self._channel
        )
        with self._lock:
            self._tasks[job_id] = _Task(job_id, spec, Path(log_path), ref)

    def cancel(self, job_id: int) -> bool:
        """Ask the job to stop; its end is always reported as an event (Ray owns the queue)."""
        with self._lock:
            task = self._tasks.get(job_id)
            if task is None or task.cancel_at is not None:
                return False
            task.cancel_at = time.monotonic()
            started = task.started_at is not None
        self._channel.cancel.remote(job_id)
        if not started:
            with contextlib.suppress(Exception):  # still waiting in Ray's queue: it never needs to start
                self._ray.cancel(task.ref)
        return False

    def close(self) -> None:
        """Stop watching, stop every task by force, and shut down the Ray started here."""
        if self._closing.is_set():
            return
        self._closing.set()
        self._thread.join()
        with self._lock:
            tasks = list(self._tasks.values())
            self._tasks.clear()
        for task in tasks:
            with contextlib.suppress(Exception):
                self._ray.cancel(task.ref, force=True)
        with contextlib.suppress(Exception):
            self._ray.kill(self._channel)
        if self._owns_ray:
            self._ray.shutdown()

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the watching thread -----------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._closing.is_set():
            try:
                self._poll()
            except Exception:  # a hiccup talking to the cluster: try again on the next round
                log.exception("watching the Ray jobs failed")
                self._closing.wait(1.0)

    def _poll(self) -> None:
        with self._lock:
            refs = [task.ref for task in self._tasks.values()]
        if refs:
            ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=POLL_S, fetch_local=False)
        else:
            ready = []
            self._closing.wait(POLL_S)
        for report in self._ray.get(self._channel.drain.remote()):
            self._on_report(report)
        ready_refs = set(ready)
        with self._lock:
            done = [task for task in self._tasks.values() if task.ref in ready_refs]
            for task in done:
                del self._tasks[task.job_id]
        for task in done:
            self.events.put(self._outcome(task))
        self._enforce_deadlines()

    def _on_report(self, report: tuple) -> None:
        kind, job_id, *payload = report
        with self._lock:
            task = self._tasks.get(job_id)
            if task is None:
                return  # a late report about a job already settled
            if kind == "log":
                log_path = task.log_path
            elif kind == "started":
                task.started_at = time.monotonic()
                self.events.put(JobEvent("started", job_id, device=payload[0]))
            elif kind == "progress":
                fraction, message = payload
                self.events.put(JobEvent("progress", job_id, fraction, message))
        if kind == "log":
            _append_log(log_path, payload[0])

    def _outcome(self, task: _Task) -> JobEvent:
        try:
            payload = self._ray.get(task.ref)
        except Exception as error:
            return self._lost(task, error)
        _append_log(task.log_path, payload.get("log", ""))
        kind, *rest = payload["outcome"]
        if task.cancel_at is not None:
            return JobEvent("cancelled", task.job_id)
        if kind == "succeeded":
            try:
                _unpack(payload.get("artifact"), task.spec.output_dir)
            except (OSError, ValueError, zipfile.BadZipFile) as error:
                return JobEvent(
                    "failed", task.job_id, error=f"the job's output could not be unpacked: {error}"
                )
            return JobEvent("succeeded", task.job_id, 1.0, result=rest[0])
        if kind == "failed":
            return JobEvent("failed", task.job_id, error=rest[0])
        return JobEvent("cancelled", task.job_id)

    def _lost(self, task: _Task, error: Exception) -> JobEvent:
        """The task did not return: cancelled by us, stopped at its time limit, or its worker died."""
        if task.cancel_at is not None:
            return JobEvent("cancelled", task.job_id)
        if task.timed_out:
            limit = task.spec.timeout_s
            return JobEvent(
                "failed",
                task.job_id,
                error=f"the job took longer than its limit of {limit:g} s and was stopped",
            )
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return JobEvent("failed", task.job_id, error=f"the Ray worker running the job died: {first_line}")

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [
                task
                for task in self._tasks.values()
                if not task.forced and _past_deadline(task, now, self._grace)
            ]
            for task in due:
                task.forced = True
                task.timed_out = task.cancel_at is None
        for task in due:
            with contextlib.suppress(Exception):
                self._ray.cancel(task.ref, force=True)


def _past_deadline(task: _Task, now: float, grace: float) -> bool:
    if task.cancel_at is not None:
        return now - task.cancel_at >= grace
    timeout = task.spec.timeout_s
    return timeout is not None and task.started_at is not None and now - task.started_at >= timeout


# -- this side of the transfer -----------------------------------------------------------------------


def _append_log(log_path: Path, text: str) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as stream:
        stream.write(text)


def _unpack(artifact: bytes | None, output_dir: str | None) -> None:
    """Unpack the remote output folder into ``output_dir``, refusing names that would leave it."""
    if artifact is None or output_dir is None:
        return
    target = Path(output_dir)
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(artifact)) as archive:
        for info in archive.infolist():
            name = PurePosixPath(info.filename)
            if name.is_absolute() or ".." in name.parts:
                raise ValueError(f"the output holds a file outside its folder: {info.filename}")
        archive.extractall(target)


# -- the remote side -------------------------------------------------------------------------------


class _Channel:
    """Progress reports and cancel requests between the studio and its remote tasks (a Ray actor)."""

    def __init__(self) -> None:
        self._reports: list[tuple] = []
        self._cancelled: set[int] = set()

    def report(self, job_id: int, kind: str, *payload: Any) -> None:
        self._reports.append((kind, job_id, *payload))

    def drain(self) -> list[tuple]:
        reports, self._reports = self._reports, []
        return reports

    def cancel(self, job_id: int) -> None:
        self._cancelled.add(job_id)

    def cancelled(self, job_id: int) -> bool:
        return job_id in self._cancelled


class _CancelFlag:
    """``cancel_requested`` for a remote job: asks the channel, at most every 0.2 s."""

    def __init__(self, channel: Any, job_id: int) -> None:
        self._channel, self._job_id = channel, job_id
        self._checked_at, self._value = float("-inf"), False

    def __call__(self) -> bool:
        import ray

        now = time.monotonic()
        if not self._value and now - self._checked_at >= CANCEL_CHECK_INTERVAL_S:
            self._checked_at = now
            self._value = bool(ray.get(self._channel.cancelled.remote(self._job_id)))
        return self._value


def run_remote(job_id: int, target: str, kwargs: dict, output_dir: str | None, channel: Any) -> dict:
    """The body of a Ray task: run the target in a scratch folder, send back outcome, log and output."""
    import ray

    from studio.jobs.logs import LogReader, job_log, job_logger
    from studio.jobs.runner import WORKER_DEVICE_ENV, run_target

    gpus = ray.get_gpu_ids()
    device = f"cuda:{gpus[0]}" if gpus else "cpu"
    os.environ[WORKER_DEVICE_ENV] = "cuda:0" if gpus else "cpu"
    ray.get(channel.report.remote(job_id, "started", device))  # waited for, so it arrives first
    with tempfile.TemporaryDirectory(prefix="studio-job-") as scratch:
        remote_out = Path(scratch) / "output"
        if output_dir is not None:
            remote_out.mkdir()
            kwargs = _swap_paths(kwargs, output_dir, str(remote_out))
        log_file = Path(scratch) / "job.log"
        log_file.touch()
        reader = LogReader(log_file, limit=LOG_LIMIT_BYTES)
        sender = _LogSender(reader, lambda text: ray.get(channel.report.remote(job_id, "log", text)))
        with sender, job_log(log_file, descriptors=False):
            node = ray.util.get_node_ip_address()
            job_logger.info("job %s: %s on Ray node %s (%s)", job_id, target, node, device)
            outcome = run_target(
                target, kwargs, lambda m: channel.report.remote(job_id, *m), _CancelFlag(channel, job_id)
            )
        artifact = None
        if outcome[0] == "succeeded" and output_dir is not None:
            artifact = _zip_folder(remote_out)
            outcome = ("succeeded", _swap_paths(outcome[1], str(remote_out), output_dir))
        return {"outcome": list(outcome), "log": reader.read(final=True), "artifact": artifact}


class _LogSender:
    """Sends a remote job's new log lines home every second while the block runs.

    Each chunk is waited for, so every chunk is in the channel before the task returns and the
    pool appends them to the log file before the rest that comes with the outcome.
    """

    def __init__(self, reader: Any, send: Any) -> None:
        self._reader, self._send = reader, send
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="studio-log-sender", daemon=True)

    def __enter__(self) -> _LogSender:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(LOG_SEND_INTERVAL_S):
            text = self._reader.read()
            if text:
                try:
                    self._send(text)
                except Exception:  # the channel is gone: the rest comes back with the outcome
                    log.warning("could not send the job's log home", exc_info=True)
                    return


def _swap_paths(value: Any, old: str, new: str) -> Any:
    """Every string that is ``old`` or a path under it, re-rooted at ``new``."""
    if isinstance(value, str):
        if value == old or value.startswith(old.rstrip("/") + "/"):
            return new + value[len(old) :]
        return value
    if isinstance(value, dict):
        return {key: _swap_paths(item, old, new) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_swap_paths(item, old, new) for item in value)
    return value


def _zip_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()
