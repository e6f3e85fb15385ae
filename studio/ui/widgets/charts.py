"""Results charts (pyqtgraph): accuracy against latency (or energy per inference) with the Pareto
front, size and latency bars, throughput by batch of a batch sweep.

Each chart is one ``GraphicsLayoutWidget`` so that it exports as one picture, and draws from
arrays in a single ``setData`` call, so a thousand versions redraw in a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPalette
from PySide6.QtWidgets import QApplication

from studio.tables import NOT_AVAILABLE, NOT_MEASURED, human_bytes, joules, pareto_front
from studio.ui.models.figures import VersionFigures

FAMILY_COLOURS = {
    "import": "#757575",
    "quantize": "#1e88e5",
    "prune": "#fb8c00",
    "distill": "#8e24aa",
    "export": "#00897b",
}
SELECTED_COLOUR = "#e53935"
MAX_TICK_LABELS = 30
MAX_TEXT_LABELS = 20


def family_colour(technique: str | None) -> str:
    family = (technique or "import").split(".")[0]
    return FAMILY_COLOURS.get(family, "#43a047")


_brushes: dict[str, QBrush] = {}


def brush(colour: str) -> QBrush:
    """One shared brush per colour: pyqtgraph caches rendered symbols per brush, so a thousand
    points drawn with a handful of shared brushes render a handful of symbols, not a thousand."""
    if colour not in _brushes:
        _brushes[colour] = pg.mkBrush(colour)
    return _brushes[colour]


def themed(widget: pg.GraphicsLayoutWidget) -> pg.GraphicsLayoutWidget:
    """Background and axes follow the application palette (light or dark desktop)."""
    palette = QApplication.palette()
    widget.setBackground(palette.color(QPalette.ColorRole.Base))
    return widget


def axis_pen() -> QColor:
    return QApplication.palette().color(QPalette.ColorRole.Text)


def style_plot(plot: pg.PlotItem, left: str, bottom: str) -> None:
    for side in ("left", "bottom"):
        axis = plot.getAxis(side)
        axis.setPen(axis_pen())
        axis.setTextPen(axis_pen())
        axis.enableAutoSIPrefix(False)  # "0.945 ms", not "945 (x0.001)"
    plot.setLabel("left", left)
    plot.setLabel("bottom", bottom)
    plot.showGrid(x=True, y=True, alpha=0.15)


# The scatter's x axis: what it reads from a version, its title, and how a tip writes one value
X_AXES = {
    "latency": ("Latency p50 (ms)", lambda f: f.latency_ms, lambda x: f"{x:.3f} ms"),
    "energy": (
        "Energy per inference (mJ)",
        lambda f: None if f.energy_j is None else 1e3 * f.energy_j,
        lambda x: joules(x / 1e3) + " per inference",
    ),
}


class ResultsScatter(pg.GraphicsLayoutWidget):
    """Accuracy (top-1 %) against latency (p50 ms) or energy per inference (``set_x_axis``);
    hover names the version, click selects it. A version without the figure is left out, never
    drawn at 0; when none has it, the plot says why."""

    version_clicked = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        themed(self)
        self.setObjectName("resultsScatter")
        self.plot = self.addPlot()
        style_plot(self.plot, "Top-1 accuracy (%)", "Latency p50 (ms)")
        self.front = pg.PlotDataItem(pen=pg.mkPen("#43a047", width=2, style=Qt.PenStyle.DashLine))
        self.plot.addItem(self.front)
        self.scatter = pg.ScatterPlotItem(hoverable=True, tip=self._tip, hoverSize=16)
        self.scatter.sigClicked.connect(self._clicked)
        self.plot.addItem(self.scatter)
        self.highlight = pg.ScatterPlotItem(
            size=20, pen=pg.mkPen(SELECTED_COLOUR, width=2), brush=pg.mkBrush(0, 0, 0, 0)
        )
        self.plot.addItem(self.highlight)
        self._pen = pg.mkPen(axis_pen(), width=0.5)
        self._labels: list[pg.TextItem] = []
        self._by_id: dict[int, VersionFigures] = {}
        self._points: dict[int, tuple[float, float]] = {}
        self.front_ids: list[int] = []
        self.x_axis = "latency"
        self._figures: list[VersionFigures] = []
        self._selected: int | None = None
        self.message = pg.TextItem("", color=axis_pen(), anchor=(0.5, 0.5))
        self.message.setParentItem(self.plot.vb)
        self.plot.vb.sigResized.connect(self._place_message)

    def set_x_axis(self, key: str) -> None:
        self.x_axis = key
        self.plot.setLabel("bottom", X_AXES[key][0])
        self.set_figures(self._figures, self._selected)

    def set_figures(self, figures: Sequence[VersionFigures], selected: int | None = None) -> None:
        self._figures, self._selected = list(figures), selected
        x_of = X_AXES[self.x_axis][1]
        measured = [f for f in figures if x_of(f) is not None and f.accuracy is not None]
        self._by_id = {f.id: f for f in measured}
        self.message.setText(self._why_empty(figures) if not measured else "")
        self._place_message()
        xs = np.array([x_of(f) for f in measured], dtype=float)
        ys = np.array([100 * f.accuracy for f in measured], dtype=float)
        self._points = {f.id: (x, y) for f, x, y in zip(measured, xs, ys, strict=True)}
        self.scatter.setData(
            x=xs,
            y=ys,
            data=[f.id for f in measured],
            brush=[brush(family_colour(f.technique)) for f in measured],
            symbol=["star" if f.is_root else "x" if f.collapsed else "o" for f in measured],
            size=[16 if f.is_root else 11 for f in measured],
            pen=self._pen,
        )
        trusted = [i for i, f in enumerate(measured) if not f.collapsed]  # a broken result is no choice
        front = [trusted[i] for i in pareto_front([(xs[i], ys[i]) for i in trusted])]
        self.front_ids = [measured[i].id for i in front]
        if front:
            self.front.setData(xs[front], ys[front])
        else:
            self.front.setData([], [])
        self._label_baselines(measured)
        self._fit(xs, ys)
        self.set_selected(selected)

    def _fit(self, xs: np.ndarray, ys: np.ndarray) -> None:
        """Show every point with a margin, even when they share an accuracy (a flat range draws no ticks)."""
        if not len(xs):
            self.plot.enableAutoRange()
            return
        for values, set_range, minimum in ((xs, self.plot.setXRange, 0.05), (ys, self.plot.setYRange, 0.5)):
            low, high = float(values.min()), float(values.max())
            pad = max((high - low) * 0.1, minimum)
            set_range(low - pad, high + pad, padding=0)

    def _label_baselines(self, measured: Sequence[VersionFigures]) -> None:
        for label in self._labels:
            self.plot.removeItem(label)
        self._labels = []
        for f in [f for f in measured if f.is_root][:MAX_TEXT_LABELS]:
            text = f.label if "baseline" in f.name.lower() else f"{f.label} (baseline)"
            label = pg.TextItem(text, color=axis_pen(), anchor=(0, 1))
            label.setPos(*self._points[f.id])
            self.plot.addItem(label)
            self._labels.append(label)

    def _why_empty(self, figures: Sequence[VersionFigures]) -> str:
        """An empty chart says why, never a bare pair of axes."""
        if not figures:
            return ""
        if all(f.accuracy is None for f in figures):
            return (
                "No version has a top-1 accuracy yet: measure one with a labelled dataset\n"
                "(Measure, with a Dataset chosen) to place it here"
            )
        if self.x_axis != "energy":
            return "No version has both an accuracy and this axis's figure yet"
        reasons = sorted({f.energy_missing for f in figures if f.energy_missing not in (None, NOT_MEASURED)})
        if reasons:
            return f"Energy per inference: {NOT_AVAILABLE}\n" + "\n".join(reasons)
        return "No version with an accuracy has an energy figure yet"

    def _place_message(self, *_args) -> None:
        rect = self.plot.vb.boundingRect()
        self.message.setPos(rect.center())

    def set_selected(self, version_id: int | None) -> None:
        self._selected = version_id
        point = self._points.get(version_id) if version_id is not None else None
        self.highlight.setData([point[0]] if point else [], [point[1]] if point else [])

    def _tip(self, x: float, y: float, data) -> str:
        f = self._by_id.get(data)
        if f is None:
            return ""
        shown = X_AXES[self.x_axis][2](x)
        fallback = f"\n{f.cpu_fallback}" if f.cpu_fallback else ""
        return f"{f.label}\n{f.technique or 'import'}\n{shown}, {y:.2f} % top-1{fallback}"

    def _clicked(self, _item, points, _event=None) -> None:
        if len(points):
            self.version_clicked.emit(int(points[0].data()))


class SizeLatencyBars(pg.GraphicsLayoutWidget):
    """Two bar charts, one bar per version: file size and latency."""

    version_clicked = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        themed(self)
        self.setObjectName("sizeLatencyBars")
        self.size_plot = self.addPlot(row=0, col=0)
        self.latency_plot = self.addPlot(row=1, col=0)
        self.latency_plot.setXLink(self.size_plot)
        style_plot(self.size_plot, "Size (KiB)", "")
        style_plot(self.latency_plot, "Latency p50 (ms)", "Version")
        self.size_bars = pg.BarGraphItem(x=[], height=[], width=0.6)
        self.latency_bars = pg.BarGraphItem(x=[], height=[], width=0.6)
        self.size_plot.addItem(self.size_bars)
        self.latency_plot.addItem(self.latency_bars)
        self._ids: list[int] = []
        self.scene().sigMouseClicked.connect(self._clicked)

    def set_figures(self, figures: Sequence[VersionFigures], selected: int | None = None) -> None:
        self._ids = [f.id for f in figures]
        xs = np.arange(len(figures), dtype=float)
        brushes = [
            brush(SELECTED_COLOUR if f.id == selected else family_colour(f.technique)) for f in figures
        ]
        sizes = np.array([f.size_bytes / 1024 for f in figures], dtype=float)
        latency = np.array([f.latency_ms if f.latency_ms is not None else 0.0 for f in figures], dtype=float)
        self.size_bars.setOpts(x=xs, height=sizes, width=0.6, brushes=brushes)
        self.latency_bars.setOpts(x=xs, height=latency, width=0.6, brushes=brushes)
        ticks = (
            [[(i, f"v{f.id}") for i, f in enumerate(figures)]] if len(figures) <= MAX_TICK_LABELS else None
        )
        for plot in (self.size_plot, self.latency_plot):
            plot.getAxis("bottom").setTicks(ticks)
            plot.enableAutoRange()

    def _clicked(self, event) -> None:
        for plot in (self.size_plot, self.latency_plot):
            if plot.sceneBoundingRect().contains(event.scenePos()):
                x = plot.vb.mapSceneToView(event.scenePos()).x()
                index = int(round(x))
                if 0 <= index < len(self._ids) and abs(x - index) <= 0.3:
                    self.version_clicked.emit(self._ids[index])
                return


class SweepChart(pg.GraphicsLayoutWidget):
    """Throughput by batch of the selected version's latest batch sweep (`studio bench --sweep`),
    on a log-2 batch axis; a hover gives each batch's p50, peak GPU memory and energy."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        themed(self)
        self.setObjectName("sweepChart")
        self.plot = self.addPlot()
        style_plot(self.plot, "Throughput (samples/s)", "Batch")
        self.line = pg.PlotDataItem(pen=pg.mkPen(FAMILY_COLOURS["quantize"], width=2))
        self.points = pg.ScatterPlotItem(size=10, hoverable=True, tip=self._tip, brush=brush("#1e88e5"))
        self.plot.addItem(self.line)
        self.plot.addItem(self.points)
        self.message = pg.TextItem("", color=axis_pen(), anchor=(0.5, 0.5))
        self.message.setParentItem(self.plot.vb)
        self.rows: list[dict] = []

    def set_version(self, figures: VersionFigures | None) -> None:
        points = [p for p in (figures.sweep if figures else ()) if p.throughput_per_s is not None]
        self.rows = [
            {
                "batch": p.batch,
                "throughput_per_s": p.throughput_per_s,
                "latency_p50_ms": p.latency_ms,
                "peak_memory_bytes": p.peak_memory_bytes,
                "energy_per_inference_j": p.energy_j,
            }
            for p in points
        ]
        xs = np.log2(np.array([p.batch for p in points], dtype=float))
        ys = np.array([p.throughput_per_s for p in points], dtype=float)
        self.line.setData(xs, ys)
        self.points.setData(x=xs, y=ys, data=list(range(len(points))))
        self.plot.getAxis("bottom").setTicks(
            [[(float(x), str(p.batch)) for x, p in zip(xs, points, strict=True)]]
        )
        self.plot.enableAutoRange()
        if points:  # from 0: a sweep that gains 2 % must not look like one that doubles
            self.plot.setYRange(0, float(ys.max()) * 1.1, padding=0)
            self.message.setText("")
        elif figures is None:
            self.message.setText("Select a version to see its throughput by batch")
        else:
            self.message.setText(
                f"No batch sweep of {figures.label} yet:\nstudio bench v{figures.id} --sweep"
            )
        self.message.setPos(self.plot.vb.boundingRect().center())

    def _tip(self, x: float, y: float, data) -> str:
        row = self.rows[int(data)]
        energy = row["energy_per_inference_j"]
        return (
            f"batch {row['batch']}: {y:.1f} samples/s\np50 {row['latency_p50_ms']:.3f} ms"
            f"\npeak GPU memory {human_bytes(row['peak_memory_bytes'])}"
            + ("" if energy is None else f"\n{joules(energy)} per inference")
        )
