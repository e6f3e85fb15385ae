"""Work a launch asks for waits for the window's first frame, and loses nothing meanwhile."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QObject, Signal
from PySide6.QtWidgets import QApplication, QWidget
from uitools import UI_MARKS

from studio.ui import app as entry
from studio.ui.background import after_first_frame

pytestmark = UI_MARKS


class PaintLog(QObject):
    """Notes each paint of one widget in a shared list, beside what the callbacks note."""

    def __init__(self, widget: QWidget, log: list[str]) -> None:
        super().__init__(widget)
        self.log = log
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Paint:
            self.log.append("paint")
        return False


def test_the_work_runs_once_after_the_first_paint(qtbot):
    widget, log = QWidget(), []
    qtbot.addWidget(widget)
    PaintLog(widget, log)
    after_first_frame(widget, lambda: log.append("work"), fallback_ms=60_000)
    QApplication.processEvents()
    assert log == [], "nothing runs before the window is shown"
    widget.show()
    qtbot.waitUntil(lambda: "work" in log)
    widget.repaint()
    qtbot.wait(50)
    assert log.index("work") > log.index("paint")
    assert log.count("work") == 1


def test_a_window_that_never_paints_still_gets_its_work(qtbot):
    widget, log = QWidget(), []
    qtbot.addWidget(widget)
    after_first_frame(widget, lambda: log.append("work"), fallback_ms=50)
    qtbot.waitUntil(lambda: log == ["work"])


class FakeServer(QObject):
    request = Signal(dict)


class FakeWindow(QWidget):
    """The two things the entry point calls on a window, noted in order."""

    def __init__(self) -> None:
        super().__init__()
        self.served: list[dict] = []

    def open_path(self, path) -> None:
        self.served.append({"path": str(path)})


@pytest.fixture
def window(qtbot) -> FakeWindow:
    window = FakeWindow()
    qtbot.addWidget(window)
    return window


def test_requests_handed_over_before_the_first_frame_follow_the_launchs_own(qtbot, window, monkeypatch):
    monkeypatch.setattr(entry, "application_icon", lambda: QApplication.windowIcon())
    server = FakeServer()
    entry.serve_after_first_frame(QApplication.instance(), window, server, {"path": "/first"})
    server.request.emit({"path": "/second"})
    assert window.served == [], "nothing is opened before the window has drawn itself"
    window.show()
    qtbot.waitUntil(lambda: len(window.served) == 2)
    server.request.emit({"path": "/third"})
    assert [r["path"] for r in window.served] == ["/first", "/second", "/third"]
