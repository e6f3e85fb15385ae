"""Netron's page, able to tell the studio what the user did in it (a node clicked).

The page reports through console messages that start with a secret prefix made for each page.
The model file decides much of what the page prints (node names are the file's own text, and
Netron logs errors that quote them), so only a message that starts with the prefix is read, and
what follows the prefix is parsed as JSON data: a name is a string to look up, never code.
Imported on first use only, with the web engine.
"""

from __future__ import annotations

import json
import secrets

from PySide6.QtCore import Signal
from PySide6.QtWebEngineCore import QWebEnginePage

from studio.ui.netron_page import netron_profile


class NetronPage(QWebEnginePage):
    """``message`` carries what the page's hooks (``netron_scripts``) report, as parsed JSON."""

    message = Signal(object)

    def __init__(self, parent=None) -> None:
        super().__init__(netron_profile(), parent)
        self.prefix = f"studio-{secrets.token_hex(12)}:"

    def javaScriptConsoleMessage(self, level, text: str, line: int, source: str) -> None:  # noqa: N802
        if not text.startswith(self.prefix):
            super().javaScriptConsoleMessage(level, text, line, source)
            return
        try:
            self.message.emit(json.loads(text[len(self.prefix) :]))
        except ValueError:
            return  # not well-formed: nothing to act on
