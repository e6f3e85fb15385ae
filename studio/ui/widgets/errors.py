"""Problems shown as a readable dialog: one sentence for the user, never a traceback in their face.

A ``StudioError`` carries the sentence already. Anything else is a bug: the dialog says so in
plain words and keeps the traceback under "Show Details…" for a bug report. Dialogs open
window-modal without a nested event loop (``open()``, not ``exec()``), so jobs keep being shown
while one is up, and tests can find it by its object name.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

ERROR_DIALOG_NAME = "studioErrorDialog"
log = logging.getLogger(__name__)


def error_sentence(error: BaseException) -> str:
    """What to tell the user about ``error``."""
    from studio.api import StudioError

    if isinstance(error, StudioError):  # in the window's words where they differ from the command line's
        return sentence_case(str(getattr(error, "window", "") or error).strip() or type(error).__name__)
    return f"Something went wrong inside the studio ({type(error).__name__}: {error})."


def sentence_case(text: str) -> str:
    """Capital first letter, unless the sentence starts with a name (``model.onnx``, ``v3``,
    ``/home/…``) whose spelling is the user's, not ours."""
    first = text.split(maxsplit=1)[0] if text.strip() else ""
    return text[:1].upper() + text[1:] if first.isalpha() else text


def show_error(
    parent: QWidget | None,
    error: BaseException | str,
    *,
    title: str = "Model Optimization Studio",
    details: str | None = None,
) -> QMessageBox:
    """Open a non-blocking error dialog and return it."""
    from studio.api import StudioError

    sentence = error if isinstance(error, str) else error_sentence(error)
    if not isinstance(error, (str, StudioError)):
        log.error("unexpected error: %s", error, exc_info=error)
    box = QMessageBox(parent)
    box.setObjectName(ERROR_DIALOG_NAME)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    box.setText(sentence)
    if details:
        box.setDetailedText(details)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setWindowModality(Qt.WindowModality.WindowModal)
    box.open()
    return box


def show_info(parent: QWidget | None, text: str, *, title: str = "Model Optimization Studio") -> QMessageBox:
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Information)
    box.setWindowTitle(title)
    box.setText(text)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box
