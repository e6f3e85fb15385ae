"""The colour scheme: applied at start-up by the entry point and again when the settings change.

Its own module so that the window can re-apply it without importing the entry point.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication


def apply_theme(theme: str) -> None:
    """ "system" follows the desktop's light or dark scheme; "light" and "dark" force one."""
    hints = QApplication.styleHints()
    if not hasattr(hints, "setColorScheme"):  # Qt before 6.8 always follows the desktop
        return
    scheme = {"light": Qt.ColorScheme.Light, "dark": Qt.ColorScheme.Dark}.get(theme, Qt.ColorScheme.Unknown)
    hints.setColorScheme(scheme)
