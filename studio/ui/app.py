"""The window's entry point: ``studio`` (no command), ``studio PROJECT``, ``studio demo``.

Only Qt and the window's own modules are imported before the window is shown; torch, ONNX
Runtime and the plugins load later, off the UI thread, so the window appears at once.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtWidgets import QApplication

APP_NAME = "Model Optimization Studio"
ORGANIZATION = "model-optimization-studio"


def configure_environment() -> None:
    """Settings the web engine reads once, before the application object exists."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")  # Chromium's sandbox refuses root
    QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)


def create_application(argv: Sequence[str] = ()) -> QApplication:
    configure_environment()
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "studio", *argv])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationDisplayName(APP_NAME)
    app.setDesktopFileName("model-optimization-studio")
    return app


def apply_theme(theme: str) -> None:
    """ "system" follows the desktop's light or dark scheme; "light" and "dark" force one."""
    hints = QApplication.styleHints()
    if not hasattr(hints, "setColorScheme"):  # Qt before 6.8 always follows the desktop
        return
    scheme = {"light": Qt.ColorScheme.Light, "dark": Qt.ColorScheme.Dark}.get(theme, Qt.ColorScheme.Unknown)
    hints.setColorScheme(scheme)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="studio", description="Open the studio window.")
    parser.add_argument(
        "path", nargs="?", type=Path, help="a project folder to open, or a model file to import"
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
        if isinstance(error, Exception):
            show_error(window, error, details="".join(traceback.format_exception(kind, error, tb)))

    sys.excepthook = hook


def main(argv: Sequence[str] | None = None) -> int:
    """Open the window; returns the exit code."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    app = create_application()
    from studio.ui.main_window import MainWindow
    from studio.ui.settings import StudioSettings

    settings = StudioSettings()
    apply_theme(settings.theme)
    window = MainWindow(settings)
    install_excepthook(window)
    window.show()
    if args.demo:
        window.controller.run_demo(args.project or settings.data_folder / "projects" / "digits-demo")
    elif args.path is not None:
        window.open_path(args.path.expanduser())
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
