"""The native, sortable layer table shown beside the graph; a click selects the layer in the graph."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt, Signal
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
from studio.api import TensorSpec
from studio.core.input_roles import describe_role
from studio.ui.models.figures import human_bytes, human_count
from studio.ui.models.layer_model import NAME_ROLE, LayerFilterProxy, LayerTableModel


class LayerTable(QWidget):
    layer_activated = Signal(str)  # the node name

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
        self.view = QTableView()
        self.view.setObjectName("layerTable")
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setAlternatingRowColors(True)
        self.view.verticalHeader().hide()
        self.view.verticalHeader().setDefaultSectionSize(22)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        header.setResizeContentsPrecision(64)  # size columns from 64 rows, not every row of a huge graph
        self.view.clicked.connect(self._on_clicked)
        self.view.activated.connect(self._on_clicked)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.filter)
        layout.addWidget(self.view, 1)

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
        self.model.set_layers(layers, times)
        fixed = [
            f"{html.escape(s.name)} {html.escape(describe_role(s.role))}" for s in inputs if s.role != "batch"
        ]
        fed = f"<br>Fed on every run: {', '.join(fixed)}" if fixed else ""
        self.summary.setText(
            f"<b>{html.escape(title)}</b> — {len(layers)} layers, {human_count(params)} parameters, "
            f"{tables.human_count(self.model.total_macs, missing=tables.UNKNOWN)} MACs, {human_bytes(size)}"
            + fed
        )
        self.view.resizeColumnsToContents()
        self.view.setColumnWidth(1, min(self.view.columnWidth(1), 200))

    def clear(self, message: str = "No model selected") -> None:
        self.model.set_layers([])
        self.summary.setText(message)

    def _on_clicked(self, index) -> None:
        name = index.data(NAME_ROLE)
        if name:
            self.layer_activated.emit(name)
