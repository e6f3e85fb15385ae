"""The graph tab's "Colour by" bar: Netron's op colours, or a heat map of time or sensitivity.

A choice whose figures the version lacks stays in the list, disabled, with a tooltip that says how
to get them: the way to the feature is visible before the data is there.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QLinearGradient, QPainter, QStandardItemModel
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSizePolicy, QWidget

from studio.ui.graph_decor import HEAT_STOPS, NO_FIGURE, OP_TYPE, SENSITIVITY, TIME, NodeMeasures, heat_fills

CHOICES = ((OP_TYPE, "Op type"), (TIME, "Time"), (SENSITIVITY, "Quantization sensitivity"))
_TIPS = {
    OP_TYPE: "Netron's own colours: one per kind of operator",
    TIME: "Each node's measured time per run, from pale (least) to dark red (most)",
    SENSITIVITY: "How much quantizing only this node changes the output, from pale (least) to dark red",
}


class HeatStrip(QWidget):
    """The heat scale as a small gradient bar."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFixedSize(96, 12)

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        gradient = QLinearGradient(0, 0, self.width(), 0)
        for i, rgb in enumerate(HEAT_STOPS):
            gradient.setColorAt(i / (len(HEAT_STOPS) - 1), QColor(*rgb))
        painter.fillRect(QRectF(self.rect()), gradient)
        painter.setPen(QColor("#808080"))
        painter.drawRect(self.rect().adjusted(0, 0, -1, -1))


class ColourBy(QWidget):
    fills_changed = Signal(object, object)  # {node: (fill, text)}, colours of the others (or None)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("colourBy")
        self.measures = NodeMeasures()
        self.choice = QComboBox()
        self.choice.setObjectName("colourByChoice")
        for key, label in CHOICES:
            self.choice.addItem(label, key)
            self.choice.setItemData(self.choice.count() - 1, _TIPS[key], Qt.ItemDataRole.ToolTipRole)
        self.choice.activated.connect(self._picked)
        self._wanted = OP_TYPE  # the user's choice, kept from version to version where it has figures
        self.low, self.high = QLabel(), QLabel()
        self.strip = HeatStrip()
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 2, 6, 2)
        row.addWidget(QLabel("Colour by:"))
        row.addWidget(self.choice)
        row.addSpacing(8)
        for part in (self.low, self.strip, self.high):
            row.addWidget(part)
        row.addStretch(1)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self._show_legend(False)
        self.set_measures(NodeMeasures())

    @property
    def key(self) -> str:
        return self.choice.currentData()

    def set_measures(self, measures: NodeMeasures) -> None:
        """A version's figures: the choices it has figures for are enabled, the rest say how to get
        them; the user's choice holds where this version has its figures, else Netron's colours."""
        self.measures = measures
        items = self.choice.model()
        assert isinstance(items, QStandardItemModel)
        for row, (key, _label) in enumerate(CHOICES):
            missing = measures.missing(key)
            items.item(row).setEnabled(missing is None)
            items.item(row).setToolTip(missing or _TIPS[key])
        key = self._wanted if measures.missing(self._wanted) is None else OP_TYPE
        self.choice.setCurrentIndex(next(i for i, (k, _) in enumerate(CHOICES) if k == key))
        self._paint()

    def clear(self) -> None:
        """No version: Netron's colours (the view forgets its colours itself)."""
        self.set_measures(NodeMeasures())

    def _picked(self, _index: int) -> None:
        self._wanted = self.key
        self._paint()

    def _paint(self) -> None:
        values = self.measures.values(self.key)
        if self.key == OP_TYPE or not values:
            self._show_legend(False)
            self.fills_changed.emit({}, None)
            return
        fills, lo, hi = heat_fills(values)
        text = (lambda v: f"{v:.3f} ms") if self.key == TIME else (lambda v: f"{v:.3g}")
        self.low.setText(text(lo))
        self.high.setText(text(hi))
        self.strip.setToolTip(
            f"{len(values)} nodes coloured from {text(lo)} to {text(hi)}; grey nodes have no figure "
            + ("(run inside another node's kernel)" if self.key == TIME else "(not quantized by the search)")
        )
        self._show_legend(True)
        self.fills_changed.emit(fills, NO_FIGURE)

    def _show_legend(self, on: bool) -> None:
        for part in (self.low, self.strip, self.high):
            part.setVisible(on)
