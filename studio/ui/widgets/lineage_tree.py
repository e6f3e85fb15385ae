"""The lineage tree: every version under the one it was made from, with its key figures."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QItemSelectionModel, QSize, Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeView, QVBoxLayout, QWidget

from studio.ui.models.figures import VersionFigures
from studio.ui.models.lineage_model import VERSION_ID_ROLE, LineageModel


class LineageTree(QWidget):
    """``current_changed(id)`` for the version to show; ``selection_changed(ids)`` for compare."""

    current_changed = Signal(int)
    selection_changed = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = LineageModel(self)
        self.view = QTreeView(self)
        self.view.setObjectName("lineageTree")
        self.view.setModel(self.model)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setUniformRowHeights(True)
        self.view.setAlternatingRowColors(True)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        header = self.view.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setResizeContentsPrecision(200)  # fit columns to 200 rows, not to every version
        header.setMinimumSectionSize(48)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        self.view.selectionModel().currentRowChanged.connect(self._on_current)
        self.view.selectionModel().selectionChanged.connect(self._on_selection)

    def sizeHint(self) -> QSize:  # the first layout's size, before one is remembered
        return QSize(280, 500)

    def minimumSizeHint(self) -> QSize:
        """Room for a version's name and its size, the columns read first; the others scroll."""
        return QSize(22 * self.fontMetrics().averageCharWidth(), 120)

    def set_figures(self, figures: Sequence[VersionFigures]) -> None:
        """Replace the tree, keeping the current and selected versions where they still exist."""
        if self.model.update_figures(figures):
            return  # the same versions with new figures: nothing to rebuild
        current, selected = self.current_id(), self.selected_ids()
        selection = self.view.selectionModel()
        selection.blockSignals(True)  # the same versions stay selected: nothing to announce
        try:
            self.model.set_figures(figures)
            self.view.expandAll()
            for column in range(self.model.columnCount()):
                self.view.resizeColumnToContents(column)
            for version_id in selected:
                self.select(version_id, add=True, make_current=False)
            if current is not None:
                self.select(current, add=True)
        finally:
            selection.blockSignals(False)

    def current_id(self) -> int | None:
        index = self.view.selectionModel().currentIndex()
        return index.data(VERSION_ID_ROLE) if index.isValid() else None

    def selected_ids(self) -> list[int]:
        rows = self.view.selectionModel().selectedRows(0)
        return [index.data(VERSION_ID_ROLE) for index in rows]

    def select(self, version_id: int, *, add: bool = False, make_current: bool = True) -> bool:
        index = self.model.index_of(version_id)
        if not index.isValid():
            return False
        flags = QItemSelectionModel.SelectionFlag.Rows | (
            QItemSelectionModel.SelectionFlag.Select
            if add
            else QItemSelectionModel.SelectionFlag.ClearAndSelect
        )
        selection = self.view.selectionModel()
        if make_current:
            selection.setCurrentIndex(index, flags)
            self.view.scrollTo(index)
        else:
            selection.select(index, flags)
        return True

    def _on_current(self, current, _previous) -> None:
        if current.isValid():
            self.current_changed.emit(current.data(VERSION_ID_ROLE))

    def _on_selection(self, *_args) -> None:
        self.selection_changed.emit(self.selected_ids())
