"""Two versions as one graph: the newer one drawn, each node coloured by what changed.

Added, reshaped and requantized nodes are coloured in the newer version's drawing; removed nodes
cannot be drawn there and are listed in the table only. The legend counts each kind. A row
selects its node in the drawing, and a node clicked in the drawing selects its row.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from studio.core.graph_diff import LABELS, REMOVED, STATUSES, GraphDiff
from studio.ui.graph_decor import DIFF_COLOURS, diff_fills
from studio.ui.models.graph_diff_model import NAME_ROLE, STATUS_ROLE, GraphDiffModel

if TYPE_CHECKING:
    from studio.ui.version_view import VersionView


_PER_ROW = 3


class DiffLegend(QWidget):
    """A swatch and a count per kind of change."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # Three to a row: one long row would hold the window wider than a 1024-pixel screen.
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(6)
        self.counts: dict[str, QLabel] = {}
        for i, status in enumerate(STATUSES):
            swatch = QLabel()
            pixmap = QPixmap(12, 12)
            pixmap.fill(QColor(DIFF_COLOURS[status][0]))
            swatch.setPixmap(pixmap)
            label = QLabel()
            label.setObjectName(f"diffCount-{status}")
            row, column = divmod(i, _PER_ROW)
            grid.addWidget(swatch, row, 2 * column)
            grid.addWidget(label, row, 2 * column + 1)
            self.counts[status] = label
        grid.setColumnStretch(2 * _PER_ROW, 1)
        self.counts[REMOVED].setToolTip("Not in the newer graph, so not drawn: listed in the table")
        self.set_counts(None)

    def set_counts(self, counts: dict[str, int] | None) -> None:
        for status, label in self.counts.items():
            n = "…" if counts is None else str(counts.get(status, 0))
            label.setText(f"{LABELS[status]} {n}" + (" (listed)" if status == REMOVED else ""))


class GraphDiffView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from studio.ui.background import Background
        from studio.ui.graph_view import GraphView

        self.title = QLabel()
        self.title.setWordWrap(True)
        self.legend = DiffLegend()
        self.graph = GraphView(colour_by=False)
        self.graph.prepare()
        self.graph.show_message("Compare two versions: the last one is drawn here, coloured by what changed.")
        self.model = GraphDiffModel(self)
        self.table = QTableView()
        self.table.setObjectName("graphDiffTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(22)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.table.clicked.connect(self._on_row)
        self.table.activated.connect(self._on_row)
        self.graph.node_clicked.connect(self.select_row)
        self.note = QLabel()
        self.note.setWordWrap(True)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.graph)
        side = QWidget()
        column = QVBoxLayout(side)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.table, 1)
        column.addWidget(self.note)
        split.addWidget(side)
        split.setStretchFactor(0, 1)  # the drawing of a chain of layers is tall and narrow
        split.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.legend)
        layout.addWidget(split, 1)
        self.diff: GraphDiff | None = None
        self._background = Background(self, threads=1)
        self._ticket = 0

    def start(self, before: str, after: str) -> int:
        """A new pair is being read; returns the ticket its results must carry to be shown."""
        self._ticket += 1
        self.diff = None
        self.model.set_diff(None)
        self.legend.set_counts(None)
        self.note.clear()
        self.title.setText(
            f"<b>{html.escape(after)}</b> drawn, coloured by what changed since <b>{html.escape(before)}</b>"
        )
        self.graph.show_message(f"Reading {after}…")
        return self._ticket

    def show_pair(self, ticket: int, before: VersionView, after: VersionView) -> None:
        """Draw ``after`` and compute the diff off the UI thread."""
        if ticket != self._ticket:
            return  # another pair was asked for meanwhile
        missing = next((v for v in (before, after) if v.graph_file is None), None)
        if missing is not None:
            self.graph.show_message(
                f"v{missing.version.id} cannot be drawn: {missing.problem or 'no graph file'}"
            )
            return
        self.graph.show_file(after.graph_file, after.graph_extra)
        self.note.setText("Comparing the graphs…")

        def compare() -> GraphDiff:
            from studio.core.graph_diff import diff_models

            return diff_models(
                before.graph_file,
                after.graph_file,
                before_shapes=[layer.output_shape for layer in before.layers] or None,
                after_shapes=[layer.output_shape for layer in after.layers] or None,
            )

        self._background.run(compare, lambda diff: self._show_diff(ticket, diff), self._failed)

    def _show_diff(self, ticket: int, diff: GraphDiff) -> None:
        if ticket != self._ticket:
            return
        self.diff = diff
        self.model.set_diff(diff)
        self.legend.set_counts(diff.counts())
        self.table.resizeColumnsToContents()
        width = self.table.viewport().width()  # what changed is the point: it comes right after the name
        for column, share in ((0, 0.38), (1, 0.45)):
            self.table.setColumnWidth(column, min(self.table.columnWidth(column), int(share * width)))
        self.note.setText(
            "Click a row to find its node in the drawing." if diff.differences() else "The graphs are alike."
        )
        self.graph.set_fills(diff_fills(diff.statuses()))

    def _failed(self, failure) -> None:
        self.note.setText(f"The graphs could not be compared: {failure}")

    def select_row(self, name: str) -> bool:
        """Select a drawn node's row (a click in the drawing); an unchanged node has none."""
        row = self.model.row_of(name)
        if row is None:
            self.table.clearSelection()
            self.note.setText(f"{name}: unchanged")
            return False
        index = self.model.index(row, 0)
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self.table.selectionModel().setCurrentIndex(index, flags)
        self.table.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtCenter)
        self.note.setText(f"{name}: {self.model.change(row).what}")
        return True

    def _on_row(self, index) -> None:
        name, status = index.data(NAME_ROLE), index.data(STATUS_ROLE)
        if status == REMOVED:
            self.note.setText(f"{name} was removed: it is not in the drawn graph")
            return
        self.graph.select_node(name)

    def shutdown(self) -> None:
        self._background.close(2000)
        self.graph.shutdown()
