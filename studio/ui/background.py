"""Plain functions run off the UI thread, their results handed back on the UI thread.

Opening a model, inspecting it, discovering plugins or building the demo project can take
seconds; the window must keep painting meanwhile. Each task's callbacks are bound to a small
QObject created on the UI thread, so the worker thread's emit is queued back to it.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Signal

log = logging.getLogger(__name__)


class TaskFailed(Exception):
    """Carries an exception and its formatted traceback from a worker thread."""

    def __init__(self, error: BaseException, text: str) -> None:
        super().__init__(str(error))
        self.error = error
        self.traceback = text


class _Relay(QObject):
    done = Signal(object)
    failed = Signal(object)


class Background(QObject):
    """A small thread pool; ``run(fn, on_done, on_error)``; ``close()`` before the window closes."""

    def __init__(self, parent: QObject | None = None, threads: int = 2) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(threads)
        self._relays: set[_Relay] = set()
        self._closed = False

    def run(
        self,
        fn: Callable[[], Any],
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[TaskFailed], None] | None = None,
    ) -> None:
        if self._closed:
            return  # the window is closing: a result would have nowhere to go
        relay = _Relay()
        self._relays.add(relay)
        relay.done.connect(lambda value: self._finish(relay, on_done, value))
        relay.failed.connect(lambda failure: self._finish(relay, on_error, failure))

        def task() -> None:
            try:
                value = fn()
            except BaseException as error:  # handed to the UI thread; nothing is lost here
                _deliver(relay.failed, TaskFailed(error, traceback.format_exc()))
                return
            _deliver(relay.done, value)

        self._pool.start(task)

    def _finish(self, relay: _Relay, callback: Callable | None, value: Any) -> None:
        self._relays.discard(relay)
        relay.deleteLater()
        if callback is not None:
            callback(value)
        elif isinstance(value, TaskFailed):
            log.error("a background task failed: %s\n%s", value, value.traceback)

    def close(self, msecs: int = -1) -> bool:
        """Take no new tasks, and wait up to ``msecs`` for the running ones; False if some still run
        (they finish on their own, and their results are dropped)."""
        self._closed = True
        return self._pool.waitForDone(msecs)


def _deliver(signal, value: Any) -> None:
    """Emit from the worker thread, unless the window closed (deleting the relay) while the task
    ran: a task that outlives the close has no one left to tell."""
    try:
        signal.emit(value)
    except RuntimeError:  # "Signal source has been deleted"
        log.debug("a background task finished after the window closed; its result is dropped")
