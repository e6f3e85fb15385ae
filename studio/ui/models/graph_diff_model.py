"""The graph diff's table: one row per node that differs (changed, removed, added)."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from studio.core.graph_diff import ADDED, PRECISION, REMOVED, SHAPE, GraphDiff, NodeChange
from studio.ui.graph_decor import DIFF_COLOURS

NAME_ROLE = Qt.ItemDataRole.UserRole + 1
STATUS_ROLE = Qt.ItemDataRole.UserRole + 2
# What a reader looks for first: reshaped and requantized nodes, then removed ones, then the
# added ones (often dozens of QuantizeLinear/DequantizeLinear nodes).
_FIRST = (SHAPE, PRECISION, REMOVED, ADDED)
_COLUMNS = ("Node", "What changed", "Op")  # the swatch on the name says which kind; what, before how

Index = QModelIndex | QPersistentModelIndex
ROOT = QModelIndex()  # the invisible root, as a default argument


class GraphDiffModel(QAbstractTableModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._rows: list[NodeChange] = []

    def set_diff(self, diff: GraphDiff | None) -> None:
        self.beginResetModel()
        rows = [] if diff is None else diff.differences()
        self._rows = sorted(rows, key=lambda n: _FIRST.index(n.status))  # stable: graph order within
        self.endResetModel()

    def change(self, row: int) -> NodeChange:
        return self._rows[row]

    def row_of(self, name: str) -> int | None:
        """The row of a drawn node (a removed node is not drawn, so never asked for)."""
        return next((i for i, n in enumerate(self._rows) if n.name == name and n.status != "removed"), None)

    def rowCount(self, parent: Index = ROOT) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = ROOT) -> int:
        return 0 if parent.isValid() else len(_COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return _COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        node, column = self._rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return _text(node, column)
        if role == Qt.ItemDataRole.DecorationRole and column == 0:
            return QColor(DIFF_COLOURS[node.status][0])
        if role == Qt.ItemDataRole.ToolTipRole:
            was = f"\n(was {node.before})" if node.before else ""
            return f"{node.name}{was}\n{node.label}: {node.what}" if node.what else node.name
        if role == NAME_ROLE:
            return node.name
        if role == STATUS_ROLE:
            return node.status
        return None


def _text(node: NodeChange, column: int) -> str:
    if column == 0:
        return node.name
    if column == 1:
        return node.what
    if node.op_before and node.op_after and node.op_before != node.op_after:
        return f"{node.op_before} → {node.op_after}"
    return node.op_after or node.op_before or ""
