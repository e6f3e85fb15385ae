"""The project's versions as a tree (baseline → pruned → int8), over plain ``VersionFigures``."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QPalette
from PySide6.QtWidgets import QApplication

from studio.tables import speed_cell, speed_text
from studio.ui.models.figures import VersionFigures, children_of, human_bytes, human_count, millis, percent

VERSION_ID_ROLE = Qt.ItemDataRole.UserRole + 1
COLLAPSED_COLOUR = QColor("#c0392b")  # a result that follows its parent poorly: readable on light and dark
_COLUMNS = ("Version", "Size", "Latency p50", "Top-1", "vs parent")  # technique, parameters: tooltip

_ROLES = frozenset(
    {
        Qt.ItemDataRole.DisplayRole,
        VERSION_ID_ROLE,
        Qt.ItemDataRole.ToolTipRole,
        Qt.ItemDataRole.ForegroundRole,
        Qt.ItemDataRole.TextAlignmentRole,
    }
)

Index = QModelIndex | QPersistentModelIndex
ROOT = QModelIndex()  # the invisible root, as a default argument


class _Node:
    __slots__ = ("children", "figures", "parent", "row")

    def __init__(self, figures: VersionFigures | None, parent: _Node | None, row: int) -> None:
        self.figures = figures
        self.parent = parent
        self.row = row
        self.children: list[_Node] = []


class LineageModel(QAbstractItemModel):
    """Read-only; ``set_figures`` replaces the whole tree (a project has tens of versions, not millions)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._root = _Node(None, None, 0)
        self._by_id: dict[int, _Node] = {}

    def update_figures(self, figures: Sequence[VersionFigures]) -> bool:
        """New figures for the same versions in the same tree: updated in place (no reset, so the
        view keeps its expansion, selection and scroll position). False when the tree changed."""
        known = {fid: node.figures.parent_id for fid, node in self._by_id.items()}
        if {f.id: f.parent_id for f in figures} != known or len(figures) != len(known):
            return False
        for fig in figures:
            self._by_id[fig.id].figures = fig
        self._changed(self._root, QModelIndex())
        return True

    def _changed(self, node: _Node, parent: QModelIndex) -> None:
        if not node.children:
            return
        last = len(node.children) - 1
        self.dataChanged.emit(self.index(0, 0, parent), self.index(last, len(_COLUMNS) - 1, parent))
        for child in node.children:
            if child.children:
                self._changed(child, self.createIndex(child.row, 0, child))

    def set_figures(self, figures: Sequence[VersionFigures]) -> None:
        self.beginResetModel()
        self._root = _Node(None, None, 0)
        self._by_id = {}
        tree = children_of(figures)
        self._attach(self._root, tree, None)
        self.endResetModel()

    def _attach(self, node: _Node, tree: dict, key: int | None) -> None:
        for row, fig in enumerate(tree.get(key, [])):
            child = _Node(fig, node, row)
            node.children.append(child)
            self._by_id[fig.id] = child
            self._attach(child, tree, fig.id)

    def index_of(self, version_id: int) -> QModelIndex:
        node = self._by_id.get(version_id)
        return QModelIndex() if node is None else self.createIndex(node.row, 0, node)

    def figures_at(self, index: Index) -> VersionFigures | None:
        node = index.internalPointer() if index.isValid() else None
        return None if node is None else node.figures

    def version_count(self) -> int:
        return len(self._by_id)

    # -- QAbstractItemModel ----------------------------------------------------------------------

    def _node(self, index: Index) -> _Node:
        return index.internalPointer() if index.isValid() else self._root

    def index(self, row: int, column: int, parent: Index = ROOT) -> QModelIndex:
        node = self._node(parent)
        if 0 <= row < len(node.children) and 0 <= column < len(_COLUMNS):
            return self.createIndex(row, column, node.children[row])
        return QModelIndex()

    def parent(self, index: Index = ROOT) -> QModelIndex:  # type: ignore[override]
        if not index.isValid():
            return QModelIndex()
        up = index.internalPointer().parent
        if up is None or up is self._root:
            return QModelIndex()
        return self.createIndex(up.row, 0, up)

    def rowCount(self, parent: Index = ROOT) -> int:
        if parent.isValid() and parent.column() != 0:
            return 0
        return len(self._node(parent).children)

    def columnCount(self, parent: Index = ROOT) -> int:
        return len(_COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return _COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        if role not in _ROLES:  # views ask for a dozen roles per cell; answer the others at once
            return None
        fig = self.figures_at(index)
        if fig is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return _cell(fig, index.column())
        if role == VERSION_ID_ROLE:
            return fig.id
        if role == Qt.ItemDataRole.ToolTipRole:
            return _tooltip(fig)
        if role == Qt.ItemDataRole.ForegroundRole and index.column() == 0 and fig.collapsed:
            return QBrush(COLLAPSED_COLOUR)
        if role == Qt.ItemDataRole.ForegroundRole and index.column() == 4 and fig.not_faster:
            return QBrush(COLLAPSED_COLOUR)
        if role == Qt.ItemDataRole.ForegroundRole and index.column() >= 2 and fig.measurements == 0:
            return QBrush(QApplication.palette().color(QPalette.ColorRole.PlaceholderText))
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() >= 1:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


def _cell(fig: VersionFigures, column: int) -> str:
    if column == 0:
        return fig.label
    if column == 1:
        return human_bytes(fig.size_bytes)
    if column == 2:
        return ("~" if fig.noise else "") + millis(fig.latency_ms)
    if column == 3:
        return percent(fig.accuracy)
    return speed_cell(fig.speed, missing="–") if fig.parent_id is not None else ""


def _tooltip(fig: VersionFigures) -> str:
    lines = [f"{fig.label}: {fig.technique or 'import'} ({fig.format}), {human_count(fig.params)} parameters"]
    if fig.measured_on:
        lines.append(f"measured on {fig.measured_on} ({fig.measurements} measurement(s))")
    else:
        lines.append("not measured yet")
    if fig.speed:
        lines.append(f"against its parent, timed in one job: {speed_text(fig.speed)}")
    if fig.noise:
        lines.append(f"{fig.noise}: measure it again on a quieter machine before trusting the timing")
    if fig.gate_text:
        lines.append(fig.gate_text)
    if fig.notes:
        lines.append(fig.notes)
    return "\n".join(lines)
