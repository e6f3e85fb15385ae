"""The Charts tab: results scatter (x axis: latency or energy per inference), size and latency
bars, before/after table, sensitivity chart, throughput by batch of a sweep; every chart exports as
PNG or SVG and its data as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.ui.models.compare_model import CompareModel
from studio.ui.models.figures import VersionFigures
from studio.ui.widgets.charts import X_AXES, ResultsScatter, SizeLatencyBars, SweepChart
from studio.ui.widgets.sensitivity_chart import SensitivityChart

_FIGURE_FIELDS = (
    "id",
    "name",
    "parent_id",
    "technique",
    "format",
    "size_bytes",
    "params",
    "macs",
    "latency_ms",
    "latency_p99_ms",
    "throughput_per_s",
    "accuracy",
    "cosine_min",
    "energy_j",
    "energy_missing",
    "peak_memory_bytes",
    "cpu_fallback",
    "measured_on",
)


def figures_csv(figures: Sequence[VersionFigures]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_FIGURE_FIELDS)
    for f in figures:
        writer.writerow([getattr(f, name) for name in _FIGURE_FIELDS])
    return out.getvalue()


def rows_csv(rows: Sequence[dict]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


def save_svg(widget: QWidget, path: Path) -> None:
    """The widget drawn as vector graphics. (pyqtgraph's own SVG exporter cannot parse the paths
    Qt 6.8+ writes, so Qt's SVG generator is used directly.)"""
    from PySide6.QtCore import QRect
    from PySide6.QtGui import QPainter
    from PySide6.QtSvg import QSvgGenerator

    generator = QSvgGenerator()
    generator.setFileName(str(path))
    generator.setSize(widget.size())
    generator.setViewBox(QRect(0, 0, widget.width(), widget.height()))
    generator.setTitle(widget.objectName() or "chart")
    painter = QPainter(generator)
    try:
        widget.render(painter)
    finally:
        painter.end()


class BeforeAfter(QWidget):
    """The selected version against its parent: every metric, with the change coloured."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("Select a version made from another to see before and after.")
        self.model = CompareModel(self)
        self.view = QTableView()
        self.view.setObjectName("beforeAfterTable")
        self.view.setModel(self.model)
        self.view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.view, 1)

    def set_pair(self, before: VersionFigures | None, after: VersionFigures | None) -> None:
        if before is None or after is None:
            self.model.set_versions([after] if after else [])
            self.title.setText("Select a version made from another to see before and after.")
            return
        self.model.set_versions([before, after])
        self.title.setText(
            f"<b>{after.label}</b> ({after.technique}) against its parent <b>{before.label}</b>"
        )


class ChartsView(QWidget):
    version_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.figures: list[VersionFigures] = []
        self.selected: int | None = None
        self.scatter = ResultsScatter()
        self.bars = SizeLatencyBars()
        self.before_after = BeforeAfter()
        self.sensitivity = SensitivityChart()
        self.sweep = SweepChart()
        self.tabs = QTabWidget()
        self.tabs.setObjectName("chartTabs")
        self.tabs.addTab(self.scatter, "Accuracy vs latency")
        self.tabs.addTab(self.bars, "Size and latency")
        self.tabs.addTab(self.before_after, "Before / after")
        self.tabs.addTab(self.sensitivity, "Layer sensitivity")
        self.tabs.addTab(self.sweep, "Throughput by batch")
        # In a narrow centre the tab titles shorten ("Accuracy v…", whole in their tooltips)
        # rather than scroll out of sight behind arrows.
        self.tabs.setElideMode(Qt.TextElideMode.ElideRight)
        self.tabs.setUsesScrollButtons(False)
        for index in range(self.tabs.count()):
            self.tabs.setTabToolTip(index, self.tabs.tabText(index))
        for chart in (self.scatter, self.bars):
            chart.version_clicked.connect(self.version_clicked)
        self.legend = QLabel(
            "★ baseline (imported) · ● "
            "<span style='color:#1e88e5'>quantized</span>, <span style='color:#fb8c00'>pruned</span>, "
            "<span style='color:#8e24aa'>distilled</span> · ✕ follows its parent poorly · "
            "dashed green: Pareto front"
        )
        self.legend.setWordWrap(True)  # never the reason the charts cannot be made narrower
        self.legend.setMinimumWidth(120)
        image = QPushButton("Export image…")
        image.clicked.connect(self._export_image)
        data = QPushButton("Export data (CSV)…")
        data.clicked.connect(self._export_csv)
        self.x_axis = QComboBox()
        self.x_axis.setObjectName("scatterXAxis")
        self.x_axis.setToolTip("The accuracy chart's horizontal axis")
        for key, (title, _, _) in X_AXES.items():
            self.x_axis.addItem(title, key)
        self.x_axis.currentIndexChanged.connect(lambda _: self.scatter.set_x_axis(self.x_axis.currentData()))
        bar = QHBoxLayout()  # under the legend, not beside it: beside, a narrow centre wraps it to a column
        bar.addWidget(self.x_axis)
        bar.addStretch(1)
        bar.addWidget(image)
        bar.addWidget(data)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.legend)
        layout.addLayout(bar)

    def set_figures(self, figures: Sequence[VersionFigures], selected: int | None = None) -> None:
        self.figures = list(figures)
        self.selected = selected
        self.scatter.set_figures(self.figures, selected)
        self.bars.set_figures(self.figures, selected)
        self._show_selected()

    def set_selected(self, version_id: int | None) -> None:
        self.selected = version_id
        self.scatter.set_selected(version_id)
        self.bars.set_figures(self.figures, version_id)
        self._show_selected()

    def _show_selected(self) -> None:
        by_id = {f.id: f for f in self.figures}
        current = by_id.get(self.selected) if self.selected is not None else None
        parent = by_id.get(current.parent_id) if current and current.parent_id is not None else None
        self.before_after.set_pair(parent, current)
        self.sensitivity.set_details(current.label if current else "", current.details if current else None)
        self.sweep.set_version(current)

    # -- export ---------------------------------------------------------------------------------

    def export_image(self, path: Path) -> None:
        """PNG or SVG by extension; the table tab is saved as a picture of the table."""
        widget = self.tabs.currentWidget()
        path = Path(path)
        if widget is self.before_after:
            widget.grab().save(str(path))
            return
        if path.suffix.lower() == ".svg":
            save_svg(widget, path)
            return
        from pyqtgraph.exporters import ImageExporter

        ImageExporter(widget.scene()).export(str(path))

    def export_csv(self, path: Path) -> None:
        widget = self.tabs.currentWidget()
        if widget is self.before_after:
            text = self.before_after.model.to_csv()
        elif widget is self.sensitivity:
            text = rows_csv(self.sensitivity.rows)
        elif widget is self.sweep:
            text = rows_csv(self.sweep.rows)
        else:
            text = figures_csv(self.figures)
        Path(path).write_text(text, encoding="utf-8")

    def _export_image(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export chart", "chart.png", "PNG image (*.png);;SVG drawing (*.svg)"
        )
        if path:
            self.export_image(Path(path))

    def _export_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export chart data", "chart.csv", "CSV (*.csv)")
        if path:
            self.export_csv(Path(path))
