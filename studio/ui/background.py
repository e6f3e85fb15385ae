"""Plain functions run off the UI thread, their results handed back on the UI thread.

Opening a model, inspecting it, discovering plugins or building the demo project can take
seconds; the window must keep painting meanwhile. Each task's callbacks are bound to a small
QObject created on the UI thread, so the worker thread's emit is queued back to it.

Work that the first frame does not need waits for it (:func:`after_first_frame`): a thread that
imports a library holds the interpreter lock most of the time, and would hold the window's first
paint back by as long.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QObject, QThreadPool, QTimer, Signal

if TYPE_CHECKING:
    from PySide6.QtWidgets import QWidget

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


def after_first_frame(widget: QWidget, then: Callable[[], None], fallback_ms: int = 1000) -> None:
    """Run ``then`` on the UI thread once ``widget`` has painted its first frame.

    ``QTimer.singleShot(0, ...)`` is too early: it fires at the event loop's first turn, before
    the display server's expose event comes back, so the work it starts delays the first frame.
    ``fallback_ms`` after this call ``then`` runs anyway, for a window that is never painted.
    """
    _FirstFrame(widget, then, fallback_ms)


class _FirstFrame(QObject):
    """Watches one widget for its first paint; a child of it, so that it goes with the widget."""

    def __init__(self, widget: QWidget, then: Callable[[], None], fallback_ms: int) -> None:
        super().__init__(widget)
        self._then: Callable[[], None] | None = then
        widget.installEventFilter(self)
        QTimer.singleShot(fallback_ms, self, self._run)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Paint and self._then is not None:
            watched.removeEventFilter(self)
            QTimer.singleShot(0, self, self._run)  # after the frame is painted and sent
        return False

    def _run(self) -> None:
        then, self._then = self._then, None
        if then is not None:
            self.deleteLater()
            then()


def _deliver(signal, value: Any) -> None:
    """Emit from the worker thread, unless the window closed (deleting the relay) while the task
    ran: a task that outlives the close has no one left to tell."""
    try:
        signal.emit(value)
    except RuntimeError:  # "Signal source has been deleted"
        log.debug("a background task finished after the window closed; its result is dropped")
