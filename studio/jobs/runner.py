"""The worker side of a job: bind the device, call the target, report what happened.

This module is what a spawned worker imports first, so it imports nothing heavy: the device
binding (``CUDA_VISIBLE_DEVICES``) must be in place before any target pulls in torch. The same
``run_target`` serves the local pool's processes and the Ray pool's remote tasks.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from typing import Any

from studio.api import Cancelled, StudioError
from studio.jobs.events import clamp_fraction, duration_text
from studio.jobs.logs import ProgressLog, job_log, job_logger

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.05
WORKER_DEVICE_ENV = "STUDIO_WORKER_DEVICE"

Send = Callable[[tuple], None]
Outcome = tuple  # ("succeeded", result) | ("failed", error) | ("cancelled",)


def bind_device(device: str) -> None:
    """Make only this worker's GPU visible; a CPU worker sees none, so nothing grabs a GPU by accident."""
    os.environ[WORKER_DEVICE_ENV] = device
    os.environ["CUDA_VISIBLE_DEVICES"] = device.split(":", 1)[1] if device.startswith("cuda:") else ""
    if "torch" in sys.modules:  # the parent's main module imported it while this process started
        log.warning("torch was imported before the worker for %s bound its device", device)


class ThrottledProgress:
    """Progress calls at most every ``interval`` seconds; the last one is never dropped."""

    def __init__(self, send: Send, interval: float = PROGRESS_INTERVAL_S) -> None:
        self._send, self._interval = send, interval
        self._last_sent = float("-inf")
        self._pending: tuple[float, str] | None = None
        self._lock = threading.Lock()  # a target may report from its own threads

    def __call__(self, fraction: float, message: str = "") -> None:
        update = (clamp_fraction(fraction), str(message))
        with self._lock:
            now = time.monotonic()
            if now - self._last_sent >= self._interval or update[0] >= 1.0:
                self._send(("progress", *update))
                self._last_sent, self._pending = now, None
            else:
                self._pending = update

    def flush(self) -> None:
        with self._lock:
            if self._pending is not None:
                self._send(("progress", *self._pending))
                self._pending = None


def resolve_target(target: str) -> Callable[..., dict]:
    module_name, _, name = target.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as error:
        raise StudioError(f"the job's function {target} cannot be found: {error}") from error
    if not callable(function):
        raise StudioError(f"the job's function {target} is not a function")
    return function


def run_target(
    target: str, kwargs: dict[str, Any], send: Send, cancel_requested: Callable[[], bool]
) -> Outcome:
    """Call the target and log its run: settings, every progress message, how it ended and its result.

    Every way the target can end becomes an outcome, with the traceback in the log.
    """
    for line in summary_lines(kwargs):
        job_logger.info("  %s", line)
    started = time.monotonic()
    outcome = _call_target(target, kwargs, send, cancel_requested)
    _log_outcome(outcome, time.monotonic() - started)
    return outcome


def _call_target(
    target: str, kwargs: dict[str, Any], send: Send, cancel_requested: Callable[[], bool]
) -> Outcome:
    throttled = ThrottledProgress(send)
    logged = ProgressLog()

    def progress(fraction: float, message: str = "") -> None:
        fraction, message = clamp_fraction(fraction), str(message)
        logged(fraction, message)  # every message reaches the log, even those the throttle drops
        throttled(fraction, message)

    try:
        result = resolve_target(target)(progress, cancel_requested, **kwargs)
        throttled.flush()
        if not isinstance(result, dict):
            raise StudioError(f"the job's function returned {type(result).__name__}, not a dict")
        return ("succeeded", result)
    except Cancelled:
        throttled.flush()
        return ("cancelled",)
    except StudioError as error:
        throttled.flush()
        return ("failed", str(error))
    except MemoryError:
        traceback.print_exc()
        return ("failed", "the job ran out of memory")
    except (Exception, SystemExit) as error:  # a bug in a target: one line back, the traceback in the log
        traceback.print_exc()
        return ("failed", f"the job failed: {type(error).__name__}: {error}")


def _log_outcome(outcome: Outcome, seconds: float) -> None:
    took = duration_text(seconds) if seconds >= 1.0 else f"{seconds:.2f} s"
    if outcome[0] == "succeeded":
        job_logger.info("succeeded in %s", took)
        for line in summary_lines(outcome[1]):
            job_logger.info("  %s", line)
    elif outcome[0] == "failed":
        job_logger.info("failed after %s: %s", took, outcome[1])
    else:
        job_logger.info("cancelled after %s", took)


SUMMARY_LINE_CHARS = 400


def summary_lines(values: dict[str, Any]) -> list[str]:
    """A job's settings or result as short "name: value" lines for its log.

    Figures stay figures (``accuracy: top1 0.9833, top5 1``), a list of sentences (a technique's
    notes) gives one line each, and tables or deep structures shrink to their size, so that the
    log says what a job was asked and what it found without repeating whole records.
    """
    lines: list[str] = []
    _summarize(values, "", 0, lines)
    return [_one_line(line) for line in lines]


def _summarize(values: dict[str, Any], prefix: str, depth: int, lines: list[str]) -> None:
    for key, value in values.items():
        name = f"{prefix}{key}"
        if _empty(value):
            continue
        if isinstance(value, dict):
            kept = {k: v for k, v in value.items() if not _empty(v)}
            if depth == 0 and not all(_is_scalar(v) for v in kept.values()):
                _summarize(kept, f"{name}.", depth + 1, lines)
            else:
                lines.append(f"{name}: " + ", ".join(f"{k} {_compact(v)}" for k, v in kept.items()))
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            lines.extend(f"{name}: {v}" for v in value)  # sentences, such as a technique's notes
        elif isinstance(value, (list, tuple)) and all(_is_scalar(v) for v in value):
            lines.append(f"{name}: " + ", ".join(_scalar(v) for v in value))
        else:
            lines.append(f"{name}: {_compact(value)}")


def _compact(value: Any) -> str:
    """A value inside a line: figures as they are, short lists of figures in brackets, the rest by size."""
    if _is_scalar(value):
        return _scalar(value)
    if isinstance(value, (list, tuple)):
        if len(value) <= 8 and all(_is_scalar(v) or isinstance(v, (list, tuple)) for v in value):
            parts = [_compact(v) for v in value]
            if all(not p.startswith("(") for p in parts):
                return "[" + ", ".join(parts) + "]"
        return _count(len(value), "row", "rows")
    if isinstance(value, dict):
        return _count(len(value), "entry", "entries")
    return str(value)


def _count(n: int, one: str, many: str) -> str:
    return f"({n} {one if n == 1 else many})"


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, tuple, dict)) and not value)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def _scalar(value: Any) -> str:
    if isinstance(value, float) and not isinstance(value, bool):
        return f"{value:.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    return str(value)


def _one_line(text: str) -> str:
    text = " ".join(text.split("\n"))
    return text if len(text) <= SUMMARY_LINE_CHARS else text[: SUMMARY_LINE_CHARS - 1] + "…"


def worker_main(device: str, tasks: Connection, events: Connection, cancel) -> None:
    """A pool worker's life: bind the device, then run tasks one at a time until told to stop."""
    bind_device(device)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C in a terminal is for the studio to handle, not us
    _exit_with_parent()
    events.send(("ready", os.getpid()))
    while True:
        try:
            task = tasks.recv()
        except (EOFError, OSError):  # the pool is gone
            return
        if task is None:
            _leave()
        job_id, target, kwargs, log_path = task
        _run_task(job_id, target, kwargs, log_path, events, cancel)


def _leave() -> None:
    """End the worker now that the pool said so, without the interpreter's teardown.

    Every job's log is closed and its outcome sent by then; what is left is unloading torch and
    ONNX Runtime, which took about a second that every command running a job waited for at exit.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError, OSError):  # none, closed, or gone
            stream.flush()
    os._exit(0)


def _exit_with_parent() -> None:
    """A studio that was killed leaves no worker behind still running its job."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="studio-parent-watch", daemon=True).start()


def _run_task(job_id: int, target: str, kwargs: dict, log_path: str, events: Connection, cancel) -> None:
    def send(message: tuple) -> None:
        events.send((message[0], job_id, *message[1:]))

    with job_log(log_path):
        device = os.environ.get(WORKER_DEVICE_ENV, "cpu")
        job_logger.info("job %s: %s on %s (pid %s)", job_id, target, device, os.getpid())
        send(("started",))
        outcome = run_target(target, kwargs, send, cancel.is_set)
    try:
        send(outcome)
    except Exception as error:  # a result that cannot be pickled
        send(("failed", f"the job's result cannot be sent back: {type(error).__name__}: {error}"))
