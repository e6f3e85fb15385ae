"""The window's entry point: ``studio`` (no command), ``studio PATH``, ``studio demo``.

Only Qt and the window's own modules are imported before the window is shown; torch, ONNX
Runtime and the plugins load later, off the UI thread, so the window appears at once. What the
launch asked for (a project, a model, the demo) and the application icon wait for the window's
first frame: a request served before the event loop runs keeps the window from being mapped at
all, and opening a project starts a thread and worker processes that compete with that frame
for the two cores a laptop may have.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import shiboken6
from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtWidgets import QApplication

from studio.ui.theme import apply_theme

if TYPE_CHECKING:
    from studio.ui.instance import InstanceServer
    from studio.ui.main_window import MainWindow

APP_NAME = "Model Optimization Studio"
ORGANIZATION = "model-optimization-studio"


def configure_environment() -> None:
    """Settings the web engine reads once, before the application object exists."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")  # Chromium's sandbox refuses root
    QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)


def create_application(argv: Sequence[str] = (), *, icon: bool = True) -> QApplication:
    """The application object, named for the desktop; ``icon=False`` leaves the icon to the caller
    (drawing it loads the SVG renderer, some 15 ms, and more again when the window is mapped)."""
    configure_environment()
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "studio", *argv])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationDisplayName(APP_NAME)
    app.setDesktopFileName("model-optimization-studio")
    if icon:
        app.setWindowIcon(application_icon())
    return app


def application_icon():
    """The studio's icon from its one SVG (title bar, task switcher, dialogs)."""
    from PySide6.QtGui import QIcon

    from studio.core.resources import resource

    return QIcon(str(resource("icons", "studio.svg")))


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="studio", description="Open the studio window.")
    parser.add_argument(
        "path",
        nargs="?",
        type=Path,
        help="a project folder or shared .studio file to open, or a model file to import",
    )
    parser.add_argument("--demo", action="store_true", help="open the demo project (made on first use)")
    parser.add_argument("--project", type=Path, help="with --demo: where to make the demo project")
    return parser.parse_args(list(argv))


def install_excepthook(window) -> None:
    """A bug in a slot becomes a readable dialog (traceback under Details), not a silent failure."""
    from studio.ui.widgets.errors import show_error

    previous = sys.excepthook

    def hook(kind, error, tb) -> None:
        previous(kind, error, tb)
        if isinstance(error, Exception) and shiboken6.isValid(window):  # not once it is gone
            show_error(window, error, details="".join(traceback.format_exception(kind, error, tb)))

    sys.excepthook = hook


def window_request(args: argparse.Namespace) -> dict:
    """What this launch asks of the window, with paths made absolute (a running studio that is
    handed the request has another working folder)."""
    if args.demo:
        return {"demo": True, "project": str(args.project.expanduser().absolute()) if args.project else None}
    if args.path is not None:
        return {"path": str(args.path.expanduser().absolute())}
    return {}


def serve_request(window, request: dict) -> None:
    """Do what a launch asked: open the demo, or a path (project, model or shared project)."""
    if request.get("demo"):
        project = request.get("project")
        window.opener.open_demo(Path(project) if project else None)
    elif request.get("path"):
        window.open_path(Path(request["path"]))


def bring_to_front(window) -> None:
    if window.isMinimized():
        window.showNormal()
    window.raise_()
    window.activateWindow()


def serve_after_first_frame(
    app: QApplication, window: MainWindow, server: InstanceServer, request: dict
) -> None:
    """Once the window has painted its first frame: the icon, this launch's request, then those
    later launches handed over meanwhile, in the order they came."""
    from studio.ui.background import after_first_frame

    early: list[dict] | None = []

    def handed_over(later: dict) -> None:
        if early is not None:
            early.append(later)
            return
        serve_request(window, later)
        bring_to_front(window)

    def first_frame() -> None:
        nonlocal early
        app.setWindowIcon(application_icon())
        waiting, early = early or [], None
        for each in (request, *waiting):
            serve_request(window, each)

    server.request.connect(handed_over)
    after_first_frame(window, first_frame)


def main(argv: Sequence[str] | None = None) -> int:
    """Open the window, or hand the request to the studio already running; returns the exit code."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    request = window_request(args)
    app = create_application(icon=False)
    from studio.ui.instance import InstanceServer, QuitOnSignals, hand_over, server_name
    from studio.ui.settings import StudioSettings

    settings = StudioSettings()
    name = server_name(settings.path.parent)
    if hand_over(name, request):
        return 0
    from studio.ui.main_window import MainWindow

    apply_theme(settings.theme)
    window = MainWindow(settings)
    install_excepthook(window)
    server = InstanceServer(name, window)
    signals = QuitOnSignals(lambda: (window.close(), app.quit()))
    window.show()
    serve_after_first_frame(app, window, server, request)
    try:
        return app.exec()
    finally:
        signals.restore()
        server.close()


if __name__ == "__main__":
    sys.exit(main())
