"""The layer table (op, output shape, params, MACs, share; time and share of time once the version
was timed with `bench --layers`; quantization sensitivity where quantize.auto measured it) over
``studio.core.graph.Layer`` rows.

Display text and sort keys are separate roles, so that sorting by MACs sorts numbers, and a
graph of thousands of nodes sorts in the proxy without formatting a string per comparison.
A MAC count that cannot be known (None) reads "unknown", never blank or 0, and sorts below 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt

from studio.tables import UNKNOWN

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
NAME_ROLE = Qt.ItemDataRole.UserRole + 2
# (header, what it means): short headers, so that every key column fits a narrow pane.
_COLUMNS = (
    ("#", "The node's place in the graph"),
    ("Name", "The node's name in the model file"),
    ("Op", "The operator it computes"),
    ("Output shape", "Its first output's shape, for a batch of 1"),
    ("Params", "Learned values it holds"),
    ("MACs", "Multiply-adds per sample"),
    ("MACs %", "Share of MACs: its part of all the model's multiply-adds"),
    ("Time", "Its time per run, from the latest `studio bench VERSION --layers`"),
    ("Time %", "Share of time: its part of the whole run's time"),
    ("Sensitivity", "Quantization sensitivity: mean (1 − cosine to the float output) with only this "
     "node quantized, as quantize.auto measured it"),
)  # fmt: skip
NAME_COLUMN, TIME_COLUMNS, SENSITIVITY_COLUMN = 1, (7, 8), 9
_NUMERIC = {0, 4, 5, 6, 7, 8, 9}

Index = QModelIndex | QPersistentModelIndex
ROOT = QModelIndex()  # the invisible root, as a default argument


class LayerTableModel(QAbstractTableModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._layers: list[Any] = []
        self._total_macs: int | None = 0
        self._times: dict[str, dict] = {}
        self._sensitivity: dict[str, float] = {}
        self._rows: dict[str, int] = {}
        self.left_out: tuple[int, ...] = ()  # columns a narrow pane hides: the name's tooltip says so

    def set_layers(
        self,
        layers: Sequence[Any],
        times: dict[str, dict] | None = None,
        sensitivity: dict[str, float] | None = None,
    ) -> None:
        """``layers``: objects with name, op, output_shape, params and macs (``Layer`` rows);
        ``times``: node name → {"ms", "share"} from ONNX Runtime's profiler, when it was timed;
        ``sensitivity``: node name → quantization sensitivity, when quantize.auto measured it."""
        self.beginResetModel()
        self._layers = list(layers)
        self._total_macs = total_macs(self._layers)
        self._times = dict(times or {})
        self._sensitivity = dict(sensitivity or {})
        self._rows = {}
        for row, layer in enumerate(self._layers):
            self._rows.setdefault(layer.name, row)
        self.endResetModel()

    def set_sensitivity(self, sensitivity: dict[str, float] | None) -> None:
        self._sensitivity = dict(sensitivity or {})
        if self._layers:
            column = SENSITIVITY_COLUMN
            self.dataChanged.emit(self.index(0, column), self.index(len(self._layers) - 1, column))

    @property
    def timed(self) -> bool:
        return bool(self._times)

    @property
    def has_sensitivity(self) -> bool:
        return bool(self._sensitivity)

    def row_of(self, name: str) -> int | None:
        """The row of the node named ``name`` (the first, should a file repeat a name)."""
        return self._rows.get(name)

    @property
    def total_macs(self) -> int | None:
        """The rows' MACs summed; None when a row's count is unknown (a partial sum would mislead)."""
        return self._total_macs

    def layer(self, row: int) -> Any:
        return self._layers[row]

    def rowCount(self, parent: Index = ROOT) -> int:
        return 0 if parent.isValid() else len(self._layers)

    def columnCount(self, parent: Index = ROOT) -> int:
        return 0 if parent.isValid() else len(_COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return _COLUMNS[section][0]
        if role == Qt.ItemDataRole.ToolTipRole:
            hidden = ", ".join(_COLUMNS[c][0] for c in self.left_out)
            more = f"\n(Widen the table to see {hidden} too)" if hidden and section == NAME_COLUMN else ""
            return _COLUMNS[section][1] + more
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        layer, column = self._layers[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(index.row(), layer, column)
        if role == SORT_ROLE:
            return self._key(index.row(), layer, column)
        if role == NAME_ROLE:
            return layer.name
        if role == Qt.ItemDataRole.TextAlignmentRole and column in _NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole and column == 1:
            return layer.name
        return None

    def share(self, layer: Any) -> float:
        """A row's fraction of all MACs; 0 where either count is unknown (shown blank)."""
        if not self._total_macs or layer.macs is None:
            return 0.0
        return layer.macs / self._total_macs

    def _text(self, row: int, layer: Any, column: int) -> str:
        if column == 0:
            return str(row + 1)
        if column == 1:
            return layer.name
        if column == 2:
            return layer.op
        if column == 3:
            return _shape(layer.output_shape)
        if column == 4:
            return compact_count(layer.params) if layer.params else ""
        if column == 5:
            if layer.macs is None:
                return UNKNOWN
            return compact_count(layer.macs) if layer.macs else ""
        if column == 6:
            share = self.share(layer)
            return f"{100 * share:.1f} %" if share else ""
        if column == SENSITIVITY_COLUMN:
            value = self._sensitivity.get(layer.name)
            return "" if value is None else f"{value:.3g}"
        timed = self._times.get(layer.name)
        if not self._times:
            return ""  # not timed: `bench --layers` fills these
        if timed is None:
            return "fused"  # run inside another node's kernel, whose time holds it
        return f"{timed['ms']:.3f} ms" if column == 7 else f"{100 * timed['share']:.1f} %"

    def _key(self, row: int, layer: Any, column: int) -> Any:
        macs = -1 if layer.macs is None else layer.macs
        ms = self._times.get(layer.name, {}).get("ms", -1.0)
        sensitivity = self._sensitivity.get(layer.name, -1.0)
        keys = (row, layer.name, layer.op, _shape(layer.output_shape), layer.params, macs, macs, ms, ms)
        return (*keys, sensitivity)[column]


def compact_count(n: int | float) -> str:
    """Three significant digits with k, M, G: "147k", "25.4M" (the table's narrow number columns)."""
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            value = n / div
            digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
            return f"{value:.{digits}f}{unit}"
    return str(int(n)) if float(n).is_integer() else f"{n:.0f}"


def total_macs(layers: Sequence[Any]) -> int | None:
    """Sum of the layers' MACs, or None when one of them is unknown."""
    macs = [layer.macs for layer in layers]
    return None if None in macs else sum(macs)


def _shape(shape: Sequence | None) -> str:
    if shape is None:
        return "?"
    return "×".join("?" if d is None else str(d) for d in shape) or "scalar"


class LayerFilterProxy(QSortFilterProxyModel):
    """Sorts by the raw numbers and filters rows by name or op (case-insensitive substring)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self._needle = ""

    def set_needle(self, text: str) -> None:
        self.beginFilterChange()
        self._needle = text.strip().lower()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        if not self._needle:
            return True
        layer = self.sourceModel().layer(source_row)
        return self._needle in layer.name.lower() or self._needle in layer.op.lower()
