"""The native, sortable layer table shown with the graph; a click selects the layer in the graph,
and a click on a node in the graph selects its row here.

Every key column fits a pane of about 450 pixels: number columns are sized to their (compact)
contents, the name takes what is left and is elided in the middle (its tooltip has it whole), and
columns without figures (time before `bench --layers`, sensitivity outside quantize.auto) are hidden.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QItemSelectionModel, QObject, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from studio import tables
from studio.ui.models.figures import human_bytes
from studio.ui.models.layer_model import (
    NAME_COLUMN,
    NAME_ROLE,
    SENSITIVITY_COLUMN,
    TIME_COLUMNS,
    LayerFilterProxy,
    LayerTableModel,
    compact_count,
)

if TYPE_CHECKING:
    from studio.api import TensorSpec
    from studio.ui.version_view import VersionView

# Widest a column is made from its contents (pixels), in a wide pane and in a narrow one; the
# user may still drag it wider.
_WIDE_CAPS = {0: 44, 2: 150, 3: 130, 4: 64, 5: 64, 6: 64, 7: 80, 8: 64, SENSITIVITY_COLUMN: 80}
_CAPS = {0: 44, 2: 84, 3: 100, 4: 56, 5: 60, 6: 58, 7: 72, 8: 58, SENSITIVITY_COLUMN: 74}
# What a narrow pane leaves out first, so that the name keeps room: the row number (the graph's
# order, which the rows keep until sorted), the share of time (the time stays), the parameters.
_NARROW_DROPS = (0, 8, 4)
NAME_MIN = 96


class LayerTable(QWidget):
    layer_activated = Signal(str)  # the node name, when the user picks a row

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = LayerTableModel(self)
        self.proxy = LayerFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.summary = QLabel("No model selected")
        self.summary.setWordWrap(True)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter layers by name or op…")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.proxy.set_needle)
        self.view = self._make_view()
        self._given_layers: object = None  # the rows last given, to know whose figures arrive later
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.filter)
        layout.addWidget(self.view, 1)

    def _make_view(self) -> QTableView:
        view = QTableView()
        view.setObjectName("layerTable")
        view.setModel(self.proxy)
        view.setSortingEnabled(True)
        view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        view.setAlternatingRowColors(True)
        view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        view.setWordWrap(False)
        view.verticalHeader().hide()
        view.verticalHeader().setDefaultSectionSize(22)
        header = view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(NAME_COLUMN, QHeaderView.ResizeMode.Stretch)
        header.setStretchLastSection(False)
        header.setMinimumSectionSize(24)
        header.setResizeContentsPrecision(64)  # size columns from 64 rows, not every row of a huge graph
        view.clicked.connect(self._on_clicked)
        view.activated.connect(self._on_clicked)
        view.installEventFilter(self)
        return view

    def set_model_info(
        self,
        title: str,
        layers: Sequence[Any],
        *,
        params: int | None,
        size: int | None,
        inputs: Sequence[TensorSpec] = (),
        times: dict[str, dict] | None = None,
    ) -> None:
        """``inputs`` with a role other than batch (a state, a sample rate) are named under the title:
        every figure of the version was measured with them fed so. ``times``: per-node times of its
        latest `bench --layers` measurement."""
        from studio.core.input_roles import describe_role  # numpy: not needed for the first frame

        self._given_layers = layers
        self.model.set_layers(layers, times)
        fixed = [
            f"{html.escape(s.name)} {html.escape(describe_role(s.role))}" for s in inputs if s.role != "batch"
        ]
        fed = f"<br>Fed on every run: {', '.join(fixed)}" if fixed else ""
        macs = self.model.total_macs
        figures = [
            f"{len(layers)} layers",
            f"{'?' if params is None else compact_count(params)} params",
            f"{tables.UNKNOWN if macs is None else compact_count(macs)} MACs",
            human_bytes(size),
        ]
        self.summary.setText(f"<b>{html.escape(title)}</b> · {' · '.join(figures)}{fed}")
        self.summary.setToolTip(
            f"{title}: {len(layers)} layers, {params if params is not None else 'unknown'} parameters, "
            f"{macs if macs is not None else 'unknown'} multiply-adds per sample, {human_bytes(size)} on disk"
        )
        self.fit_columns()

    def show_measures(self, view: VersionView) -> None:
        """The version's quantization sensitivity, when ``view`` is the version shown here."""
        if view.layers is not self._given_layers:
            return
        self.model.set_sensitivity(view.sensitivity)
        self.fit_columns()

    def clear(self, message: str = "No model selected") -> None:
        self._given_layers = None
        self.model.set_layers([])
        self.summary.setText(message)
        self.summary.setToolTip("")

    def select_layer(self, name: str) -> bool:
        """Select and scroll to the row of node ``name`` (a click in the graph); False if no row has
        it. The filter is cleared when it hides the row. Emits nothing: the graph already shows it."""
        row = self.model.row_of(name)
        if row is None:
            return False
        index = self.proxy.mapFromSource(self.model.index(row, NAME_COLUMN))
        if not index.isValid():
            self.filter.clear()
            index = self.proxy.mapFromSource(self.model.index(row, NAME_COLUMN))
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self.view.selectionModel().setCurrentIndex(index, flags)
        self.view.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtCenter)
        return True

    def fit_columns(self) -> None:
        """Hide columns without figures; size the others to their contents and headers, up to a cap,
        and leave the rest of the width to the name. In a narrow pane the headers give way first
        (they elide; their tooltips stay), then the columns of ``_NARROW_DROPS``."""
        view, header = self.view, self.view.horizontalHeader()
        empty = {*(() if self.model.timed else TIME_COLUMNS)}
        if not self.model.has_sensitivity:
            empty.add(SENSITIVITY_COLUMN)
        for column in range(self.model.columnCount()):
            view.setColumnHidden(column, column in empty)  # a hidden column measures as nothing
        content = {c: view.sizeHintForColumn(c) for c in _CAPS if c not in empty}
        room = view.viewport().width()
        for caps, with_header, name_room in (
            (_WIDE_CAPS, True, 2 * NAME_MIN),
            (_CAPS, True, NAME_MIN),
            (_CAPS, False, 0),
        ):
            widths = {
                c: min(max(w, header.sectionSizeHint(c) if with_header else 32), caps[c])
                for c, w in content.items()
            }
            if room - sum(widths.values()) >= name_room:
                break  # else narrower: tighter caps, then headers that elide (their tooltips stay)
        dropped = set()
        for column in _NARROW_DROPS:
            if room - sum(widths.values()) >= NAME_MIN:
                break
            if widths.pop(column, None) is not None:
                dropped.add(column)
        for column in dropped:
            view.setColumnHidden(column, True)
        for column, width in widths.items():
            view.setColumnWidth(column, width)
        fits = room - sum(widths.values()) >= NAME_MIN
        header.setSectionResizeMode(
            NAME_COLUMN, QHeaderView.ResizeMode.Stretch if fits else QHeaderView.ResizeMode.Interactive
        )
        if not fits:
            view.setColumnWidth(NAME_COLUMN, NAME_MIN)
        self.model.left_out = tuple(sorted(dropped))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if watched is self.view and event.type() == QEvent.Type.Resize:
            self.fit_columns()
        return super().eventFilter(watched, event)

    def _on_clicked(self, index) -> None:
        name = index.data(NAME_ROLE)
        if name:
            self.layer_activated.emit(name)
