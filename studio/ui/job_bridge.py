"""The one adapter between the job manager and Qt: job events in, Qt signals out, on the UI thread.

The manager calls its listeners from its own thread. Emitting a signal of an object that lives
on the UI thread from there queues the call into the UI thread's event loop, so every slot runs
on the UI thread and the manager thread never waits for the window. Progress events are
coalesced per job (only the latest is delivered per event-loop turn) so that a chatty technique
cannot flood the window.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal, Slot

from studio.jobs.events import JobEvent


class JobBridge(QObject):
    """Subscribe with ``attach(manager)``; ``detach()`` before the manager closes."""

    job_event = Signal(object)  # every JobEvent that matters to the window, in order per job
    job_finished = Signal(int, str)  # job id, final state: succeeded, failed, cancelled, interrupted

    _wake = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._pending: list[JobEvent] = []
        self._unsubscribe: Callable[[], None] | None = None
        self._wake.connect(self._deliver)

    def attach(self, manager) -> None:
        """Listen to ``manager`` (anything with ``subscribe(listener) -> unsubscribe``)."""
        self.detach()
        self._unsubscribe = manager.subscribe(self.post)

    def detach(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def post(self, event: JobEvent) -> None:
        """Called on the manager's thread; safe from any thread."""
        with self._lock:
            if event.kind == "progress":
                self._pending = [
                    e for e in self._pending if not (e.kind == "progress" and e.job_id == event.job_id)
                ]
            wake = not self._pending
            self._pending.append(event)
        if wake:
            self._wake.emit()

    @Slot()
    def _deliver(self) -> None:
        with self._lock:
            events, self._pending = self._pending, []
        for event in events:
            self.job_event.emit(event)
            if event.final:
                self.job_finished.emit(event.job_id, event.kind)
