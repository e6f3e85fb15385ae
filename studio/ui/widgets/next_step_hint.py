"""The "what next" line under the lineage (studio.ui.models.next_step says what it reads)."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from studio.ui.models.figures import VersionFigures
from studio.ui.models.next_step import next_step


class NextStepHint(QLabel):
    """Word-wrapped plain text, hidden while there is nothing to suggest."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("nextStepHint")
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.PlainText)  # version names are the user's text
        self.setMargin(6)
        self.setStyleSheet("#nextStepHint { border-top: 1px solid palette(mid); }")
        self.hide()

    def show_for(self, version_id: int | None, figures: Sequence[VersionFigures]) -> None:
        fig = next((f for f in figures if f.id == version_id), None)
        text = next_step(fig, figures)
        self.setText(text or "")
        self.setToolTip(text or "")
        self.setVisible(bool(text))


def with_hint(content: QWidget, hint: NextStepHint) -> QWidget:
    """``content`` with ``hint`` below it, as one dock's widget."""
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(0)
    layout.addWidget(content, 1)
    layout.addWidget(hint)
    return box
