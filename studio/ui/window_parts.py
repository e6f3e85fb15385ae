"""The window's panels and how they are laid out: central tabs, docks and the status bar.

Kept apart from the window's behaviour (``main_window.py``) so that each stays readable. Every
dock and toolbar has an object name: ``saveState``/``restoreState`` find them by it.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QSplitter, QStackedWidget, QTabWidget, QWidget

from studio.ui.graph_view import GraphView
from studio.ui.widgets.compare_view import CompareView
from studio.ui.widgets.jobs_panel import JobsPanel
from studio.ui.widgets.layer_table import LayerTable
from studio.ui.widgets.lazy import LazyWidget
from studio.ui.widgets.lineage_tree import LineageTree
from studio.ui.widgets.optimize_panel import OptimizePanel
from studio.ui.widgets.recipe_editor import RecipeEditor
from studio.ui.widgets.welcome import WelcomePage


def _make_charts() -> QWidget:
    from studio.ui.widgets.charts_view import ChartsView

    return ChartsView()


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


def build_parts(window: QMainWindow) -> WindowParts:
    welcome = WelcomePage()
    graph, layers = GraphView(), LayerTable()
    split = QSplitter(Qt.Orientation.Horizontal)
    split.setObjectName("graphSplitter")
    split.addWidget(graph)
    split.addWidget(layers)
    split.setStretchFactor(0, 3)
    split.setStretchFactor(1, 2)
    split.setSizes([500, 500])  # the drawing first; the table beside it
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
    lineage, optimize, recipe, jobs = LineageTree(), OptimizePanel(), RecipeEditor(), JobsPanel()
    docks = {
        "lineage": _dock(window, "Lineage", lineage, Qt.DockWidgetArea.LeftDockWidgetArea),
        "optimize": _dock(window, "Optimize", optimize, Qt.DockWidgetArea.RightDockWidgetArea),
        "recipe": _dock(window, "Recipe", recipe, Qt.DockWidgetArea.RightDockWidgetArea),
        "jobs": _dock(window, "Jobs", jobs, Qt.DockWidgetArea.BottomDockWidgetArea),
    }
    window.tabifyDockWidget(docks["optimize"], docks["recipe"])
    docks["optimize"].raise_()
    status = window.statusBar()
    devices_label, jobs_label, busy_label = QLabel("Devices: cpu"), QLabel("No jobs running"), QLabel()
    devices_label.setObjectName("devicesLabel")
    jobs_label.setObjectName("jobsLabel")
    status.addWidget(busy_label, 1)
    status.addPermanentWidget(jobs_label)
    status.addPermanentWidget(devices_label)
    return WindowParts(
        stack, welcome, tabs, graph, layers, charts, compare, lineage, optimize, recipe, jobs, docks,
        devices_label, jobs_label, busy_label,
    )  # fmt: skip


def _dock(window: QMainWindow, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
    dock = QDockWidget(title, window)
    dock.setObjectName(f"{title.lower()}Dock")
    dock.setWidget(widget)
    window.addDockWidget(area, dock)
    return dock


def default_sizes(window: QMainWindow, parts: WindowParts) -> None:
    """A first-run layout: lineage on the left, optimize on the right, jobs short at the bottom.
    Dock sizes only take once the window is laid out, so call this after it is shown."""
    horizontal, vertical = Qt.Orientation.Horizontal, Qt.Orientation.Vertical
    window.resizeDocks([parts.docks["lineage"], parts.docks["optimize"]], [380, 380], horizontal)
    window.resizeDocks([parts.docks["jobs"]], [230], vertical)
