"""A placeholder that builds its real content the first time it is needed.

The charts import pyqtgraph (about half a second); building them only when the Charts tab is
first shown keeps the window's start-up fast.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget


class LazyWidget(QWidget):
    built = Signal(object)

    def __init__(self, factory: Callable[[], QWidget], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._factory = factory
        self._content: QWidget | None = None
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)

    @property
    def content(self) -> QWidget | None:
        return self._content

    def ensure(self) -> QWidget:
        if self._content is None:
            self._content = self._factory()
            self._layout.addWidget(self._content)
            self.built.emit(self._content)
        return self._content

    def showEvent(self, event) -> None:
        self.ensure()
        super().showEvent(event)
