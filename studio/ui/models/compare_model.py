"""Versions side by side: one column per version, one row per metric, deltas against the first."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from studio.ui.models.figures import METRICS, VersionFigures

BETTER = QColor("#2e7d32")
WORSE = QColor("#c62828")
DELTA_SIGN_ROLE = Qt.ItemDataRole.UserRole + 1

Index = QModelIndex | QPersistentModelIndex
ROOT = QModelIndex()  # the invisible root, as a default argument


class CompareModel(QAbstractTableModel):
    """The first version is the reference; every other cell shows its value and the change."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._versions: list[VersionFigures] = []

    def set_versions(self, versions: Sequence[VersionFigures]) -> None:
        self.beginResetModel()
        self._versions = list(versions)
        self.endResetModel()

    @property
    def versions(self) -> list[VersionFigures]:
        return list(self._versions)

    def rowCount(self, parent: Index = ROOT) -> int:
        return 0 if parent.isValid() else len(METRICS)

    def columnCount(self, parent: Index = ROOT) -> int:
        return 0 if parent.isValid() else len(self._versions)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Vertical:
            return METRICS[section].title
        fig = self._versions[section]
        return f"{fig.label}\n{fig.technique or 'import'}" + ("\n(reference)" if section == 0 else "")

    def cell(self, row: int, column: int) -> tuple[str, str, int]:
        """Value text, delta text and delta sign (+1 better, -1 worse, 0 none) of one cell."""
        metric, fig = METRICS[row], self._versions[column]
        if column == 0:
            return metric.shown(fig), "", 0
        delta, sign = metric.change(self._versions[0], fig)
        return metric.shown(fig), delta, sign

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        value, delta, sign = self.cell(index.row(), index.column())
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{value}   ({delta})" if delta else value
        if role == DELTA_SIGN_ROLE:
            return sign
        if role == Qt.ItemDataRole.ForegroundRole and sign:
            return QBrush(BETTER if sign > 0 else WORSE)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tip(index.row(), index.column())
        return None

    def _tip(self, row: int, column: int) -> str | None:
        """Why a figure is missing or what stands behind it: energy's reason, a CPU fallback."""
        metric, fig = METRICS[row], self._versions[column]
        if metric.kind == "joules" and fig.energy_j is None:
            return fig.energy_missing
        if metric.attr in ("latency_ms", "throughput_per_s") and fig.cpu_fallback:
            return fig.cpu_fallback
        return None

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["metric", *(f.label for f in self._versions)])
        for metric in METRICS:
            writer.writerow([metric.title, *(metric.value(f) for f in self._versions)])
        return out.getvalue()
