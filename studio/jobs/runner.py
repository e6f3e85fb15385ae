"""The worker side of a job: bind the device, call the target, report what happened.

This module is what a spawned worker imports first, so it imports nothing heavy: the device
binding (``CUDA_VISIBLE_DEVICES``) must be in place before any target pulls in torch. The same
``run_target`` serves the local pool's processes and the Ray pool's remote tasks.
"""

from __future__ import annotations

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
from studio.jobs.events import clamp_fraction
from studio.jobs.logs import job_log

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
    """Call the target; every way it can end becomes an outcome, with the traceback in the log."""
    progress = ThrottledProgress(send)
    try:
        result = resolve_target(target)(progress, cancel_requested, **kwargs)
        progress.flush()
        if not isinstance(result, dict):
            raise StudioError(f"the job's function returned {type(result).__name__}, not a dict")
        return ("succeeded", result)
    except Cancelled:
        progress.flush()
        return ("cancelled",)
    except StudioError as error:
        progress.flush()
        return ("failed", str(error))
    except MemoryError:
        traceback.print_exc()
        return ("failed", "the job ran out of memory")
    except (Exception, SystemExit) as error:  # a bug in a target: one line back, the traceback in the log
        traceback.print_exc()
        return ("failed", f"the job failed: {type(error).__name__}: {error}")


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
            return
        job_id, target, kwargs, log_path = task
        _run_task(job_id, target, kwargs, log_path, events, cancel)


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
        print(f"job {job_id}: {target} on {os.environ.get(WORKER_DEVICE_ENV, 'cpu')} (pid {os.getpid()})")
        send(("started",))
        outcome = run_target(target, kwargs, send, cancel.is_set)
        if outcome[0] == "failed":
            print(f"job {job_id} failed: {outcome[1]}")
    try:
        send(outcome)
    except Exception as error:  # a result that cannot be pickled
        send(("failed", f"the job's result cannot be sent back: {type(error).__name__}: {error}"))
