"""The window's panels and how they are laid out: central tabs, docks and the status bar.

Kept apart from the window's behaviour (``main_window.py``) so that each stays readable. Every
dock, toolbar and splitter has an object name: ``saveState``/``restoreState`` find them by it.

The layout adapts to the window's size rather than holding pixel sizes: the Optimize dock takes
the right edge from top to bottom (it holds the tallest form), Jobs spans the rest of the
bottom, every dock area keeps its share of the window as the window is resized (``DockShares``),
and the graph sits above its layer table unless the centre is wide enough for both side by side
(``GraphSplitter``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QStackedWidget, QTabWidget, QWidget

from studio.ui.graph_view import GraphView
from studio.ui.widgets.compare_view import CompareView
from studio.ui.widgets.jobs_panel import JobsPanel, ShareSplitter
from studio.ui.widgets.layer_table import LayerTable
from studio.ui.widgets.lazy import LazyWidget
from studio.ui.widgets.lineage_tree import LineageTree
from studio.ui.widgets.optimize_panel import ElidedLabel, OptimizePanel
from studio.ui.widgets.recipe_editor import RecipeEditor
from studio.ui.widgets.welcome import WelcomePage

# Raise it whenever the dock arrangement changes, so that a state saved by an older layout is
# refused (restoreState(state, LAYOUT_VERSION) is False) instead of bringing a cramped one back.
LAYOUT_VERSION = 2

Area = Qt.DockWidgetArea
# The first layout's dock sizes, as shares of the window's width (left, right) or height (bottom).
DEFAULT_SHARES: dict[Area, float] = {
    Area.LeftDockWidgetArea: 0.2,
    Area.RightDockWidgetArea: 0.26,
    Area.BottomDockWidgetArea: 0.14,  # about four rows of jobs at 900 px
}
_ACROSS = (Area.LeftDockWidgetArea, Area.RightDockWidgetArea)  # sized by width; the others by height

GRAPH_SHARE = 0.6  # the drawing's part of the Graph tab, whichever way it is split
SIDE_BY_SIDE_FROM = 1300  # centre width (px) from which graph and table sit side by side…
STACKED_BELOW = 1200  # …and below which they stack again; the gap keeps it from flipping to and fro


def _make_charts() -> QWidget:
    from studio.ui.widgets.charts_view import ChartsView

    return ChartsView()


class GraphSplitter(ShareSplitter):
    """The graph and its layer table. Stacked, the table below at the full width of the centre,
    while the centre is not wide: the table's columns then fit and the graph keeps its width.
    Side by side once the centre is wide (a wide monitor), where both fit. The drawing keeps its
    share of the room through resizes and orientation changes; dragging the handle sets it."""

    def __init__(self, graph: QWidget, table: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Vertical, GRAPH_SHARE, parent)
        self.setObjectName("graphSplitter")
        self.addWidget(graph)
        self.addWidget(table)

    def resizeEvent(self, event) -> None:
        width = event.size().width()
        wide = self.orientation() == Qt.Orientation.Horizontal
        if not wide and width >= SIDE_BY_SIDE_FROM:
            self.setOrientation(Qt.Orientation.Horizontal)
        elif wide and width < STACKED_BELOW:
            self.setOrientation(Qt.Orientation.Vertical)
        super().resizeEvent(event)


class DockShares(QObject):
    """Keeps every dock area's share of the window as the window is resized.

    A main window gives all of a resize to its central widget: shrunk to 1024 px the docks are
    squeezed, grown back they stay small. Here each area's width (left, right) or height (top,
    bottom) is remembered as a share of the window and set again after every window resize.
    A size the user gives an area by dragging its edge becomes its new share. Nothing else
    does: a dock held at its minimum in a small window, or a tab brought to the front there,
    gets its full share back when the window grows again.
    """

    def __init__(self, window: QMainWindow, docks: Iterable[QDockWidget]) -> None:
        super().__init__(window)
        self.window = window
        self.docks = list(docks)
        self.shares: dict[Area, float] = {}
        self._size = QSize()  # the window's size when the docks were last sized by their shares
        self._following = False  # from a window resize until the docks are rescaled
        self._before_drag: dict[Area, int] | None = None  # area sizes when a press on the window began
        window.installEventFilter(self)

    @property
    def pending(self) -> bool:
        """True from a window resize until the docks are sized by their shares again."""
        return self._following or self.window.size() != self._size

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind == QEvent.Type.Show:
            self._take_missing()  # laid out by now: from a restored state, or from the size hints
        resized = kind == QEvent.Type.Show or kind == QEvent.Type.Resize and self.window.isVisible()
        if resized and not self._following:
            self._following = True
            QTimer.singleShot(0, self, self.apply)  # once the window has laid itself out
        elif kind == QEvent.Type.MouseButtonPress:
            # A press on the window itself, not on a panel: on a separator between docks.
            self._before_drag = self._area_sizes()
        elif kind == QEvent.Type.MouseButtonRelease and self._before_drag is not None:
            before, self._before_drag = self._before_drag, None
            for area, dock in self._shown().items():
                if before.get(area) != _extent(area, dock):
                    self._take(area, dock)
        return False

    def use(self, shares: dict[Area, float]) -> None:
        """Start from ``shares``; applied now when the window is shown, else when it is."""
        self.shares = dict(shares)
        if self.window.isVisible():
            self.apply()

    def apply(self) -> None:
        """Size every area by its share; an area without one yet takes the size it has."""
        try:
            self._take_missing()
            widths, heights = ([], []), ([], [])
            for area, dock in self._shown().items():
                docks, sizes = widths if area in _ACROSS else heights
                docks.append(dock)
                sizes.append(round(self.shares[area] * _extent(area, self.window)))
            if widths[0]:
                self.window.resizeDocks(*widths, Qt.Orientation.Horizontal)
            if heights[0]:
                self.window.resizeDocks(*heights, Qt.Orientation.Vertical)
            self.window.layout().activate()  # the docks take their sizes now, not at the next paint
        finally:
            self._size = self.window.size()
            self._following = False

    def _shown(self) -> dict[Area, QDockWidget]:
        """One dock in sight in each area: shown, docked, and not a tab behind another (Qt keeps
        those "visible", outside the window, at a size of their own)."""
        found: dict[Area, QDockWidget] = {}
        for dock in self.docks:
            if dock.isVisible() and not dock.isFloating() and self.window.rect().intersects(dock.geometry()):
                found.setdefault(self.window.dockWidgetArea(dock), dock)
        found.pop(Area.NoDockWidgetArea, None)
        return found

    def _take_missing(self) -> None:
        """An area without a share yet (first shown, or first given a dock) keeps the size it has."""
        for area, dock in self._shown().items():
            if area not in self.shares:
                self._take(area, dock)

    def _area_sizes(self) -> dict[Area, int]:
        return {area: _extent(area, dock) for area, dock in self._shown().items()}

    def _take(self, area: Area, dock: QDockWidget) -> None:
        total = _extent(area, self.window)
        if total > 0:
            self.shares[area] = _extent(area, dock) / total


def _extent(area: Area, widget: QWidget) -> int:
    """A widget's size across the window for a left or right area, else its height."""
    return widget.width() if area in _ACROSS else widget.height()


@dataclass
class WindowParts:
    stack: QStackedWidget
    welcome: WelcomePage
    tabs: QTabWidget
    graph: GraphView
    layers: LayerTable
    charts: LazyWidget
    compare: CompareView
    lineage: LineageTree
    optimize: OptimizePanel
    recipe: RecipeEditor
    jobs: JobsPanel
    docks: dict[str, QDockWidget]
    devices_label: QLabel
    jobs_label: QLabel
    busy_label: QLabel
    split: GraphSplitter
    dock_shares: DockShares


def build_parts(window: QMainWindow) -> WindowParts:
    welcome = WelcomePage()
    graph, layers = GraphView(), LayerTable()
    split = GraphSplitter(graph, layers)
    charts, compare = LazyWidget(_make_charts), CompareView()
    tabs = QTabWidget()
    tabs.setObjectName("mainTabs")
    tabs.addTab(split, "Graph")
    tabs.addTab(charts, "Charts")
    tabs.addTab(compare, "Compare")
    stack = QStackedWidget()
    stack.addWidget(welcome)
    stack.addWidget(tabs)
    window.setCentralWidget(stack)
    # Optimize holds the tallest form: the right area takes both right corners, so it runs from
    # the toolbar to the status bar, and Jobs spans the lineage and the centre only.
    window.setCorner(Qt.Corner.TopRightCorner, Area.RightDockWidgetArea)
    window.setCorner(Qt.Corner.BottomRightCorner, Area.RightDockWidgetArea)
    lineage, optimize, recipe, jobs = LineageTree(), OptimizePanel(), RecipeEditor(), JobsPanel()
    docks = {
        "lineage": _dock(window, "Lineage", lineage, Area.LeftDockWidgetArea),
        "optimize": _dock(window, "Optimize", optimize, Area.RightDockWidgetArea),
        "recipe": _dock(window, "Recipe", recipe, Area.RightDockWidgetArea),
        "jobs": _dock(window, "Jobs", jobs, Area.BottomDockWidgetArea),
    }
    window.tabifyDockWidget(docks["optimize"], docks["recipe"])
    docks["optimize"].raise_()
    status = window.statusBar()
    devices_label, jobs_label = QLabel("Devices: cpu"), QLabel("No jobs running")
    busy_label = ElidedLabel()  # "Reading …" names a version: never what widens the window
    devices_label.setObjectName("devicesLabel")
    jobs_label.setObjectName("jobsLabel")
    busy_label.setObjectName("busyLabel")
    status.addWidget(busy_label, 1)
    status.addPermanentWidget(jobs_label)
    status.addPermanentWidget(devices_label)
    return WindowParts(
        stack, welcome, tabs, graph, layers, charts, compare, lineage, optimize, recipe, jobs, docks,
        devices_label, jobs_label, busy_label, split, DockShares(window, docks.values()),
    )  # fmt: skip


def _dock(window: QMainWindow, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
    dock = QDockWidget(title, window)
    dock.setObjectName(f"{title.lower()}Dock")
    dock.setWidget(widget)
    window.addDockWidget(area, dock)
    return dock


def default_sizes(window: QMainWindow, parts: WindowParts) -> None:
    """A first-run layout: every dock area at its default share of the window (lineage narrow on
    the left, Optimize on the right, Jobs short at the bottom), kept as the window is resized.
    Takes effect at once when the window is shown, else when it is first shown. ``window`` is
    the one ``parts`` were built for, which their ``dock_shares`` already watch."""
    parts.dock_shares.use(DEFAULT_SHARES)
