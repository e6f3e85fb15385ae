"""The window's layout at the sizes people use it: 1600×1000, 1400×900 and 1024×700.

One real window with the demo project open is resized through those sizes and measured: the
graph gets room, the layer table sits below it at a width that holds its columns, the Optimize
form keeps some height in a short window, the Jobs panel stays short, no text in a panel is cut
off, nothing overlaps, and the docks get their room back when the window grows again. Every view
is saved as a screenshot at 1600×1000 and 1024×700 for a person to look at.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtGui import Qt as QtGuiQt  # Qt's namespace with the text helpers
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDockWidget,
    QLabel,
    QPushButton,
    QStyle,
    QStyleOptionButton,
    QStyleOptionComboBox,
    QWidget,
)
from uitools import UI_MARKS, WAIT_MS, open_project, save_screenshot, wait_for_plugins

from studio.ui.window_parts import DEFAULT_SHARES

pytestmark = UI_MARKS

# The smallest room the graph gets at each size (the reported layout gave it about 270 px wide).
GRAPH_AT_LEAST = {(1600, 1000): (800, 400), (1400, 900): (700, 350), (1024, 700): (440, 250)}
TABLE_COLUMNS_FIT = 640  # px of layer table width that holds all its columns (#, name, op, shape, …)


# -- measuring ---------------------------------------------------------------------------------------


def resize(qtbot, window, width: int, height: int) -> None:
    window.resize(width, height)
    qtbot.waitUntil(lambda: window.size() == QSize(width, height) and not window.parts.dock_shares.pending)


def text_width(label: QLabel) -> int:
    """The width the label's text needs on one line (rich text measured as the label draws it)."""
    if label.textFormat() == Qt.TextFormat.PlainText or not QtGuiQt.mightBeRichText(label.text()):
        metrics = label.fontMetrics()
        return max(metrics.horizontalAdvance(line) for line in label.text().splitlines() or [""])
    document = QTextDocument()
    document.setDefaultFont(label.font())
    document.setDocumentMargin(0)
    document.setHtml(label.text())
    return int(document.idealWidth() + 0.5)


def clipped(widget: QWidget) -> bool:
    """Whether the widget's text is wider (or, wrapped, taller) than the room it is drawn in.
    Text shortened with "…" whose tooltip holds all of it is not clipped: it is elided."""
    if isinstance(widget, QLabel):
        text = widget.text()
        if not text or widget.pixmap() is not None and not widget.pixmap().isNull():
            return False
        if text.endswith("…") and widget.toolTip():
            return False
        room = widget.contentsRect().adjusted(
            widget.margin(), widget.margin(), -widget.margin(), -widget.margin()
        )
        if widget.wordWrap():
            return widget.heightForWidth(widget.width()) > widget.height()
        return text_width(widget) > room.width()
    if isinstance(widget, QPushButton):
        option = QStyleOptionButton()
        widget.initStyleOption(option)
        room = widget.style().subElementRect(QStyle.SubElement.SE_PushButtonContents, option, widget)
        icon = option.iconSize.width() + 4 if not widget.icon().isNull() else 0
        return widget.fontMetrics().horizontalAdvance(widget.text().replace("&", "")) + icon > room.width()
    if isinstance(widget, QComboBox) and not widget.isEditable() and widget.currentText():
        if widget.toolTip() == widget.currentText():
            return False  # an ElidedComboBox: it ends its text with "…" and shows all of it as a tooltip
        option = QStyleOptionComboBox()
        widget.initStyleOption(option)
        field = widget.style().subControlRect(
            QStyle.ComplexControl.CC_ComboBox, option, QStyle.SubControl.SC_ComboBoxEditField, widget
        )
        return widget.fontMetrics().horizontalAdvance(widget.currentText()) > field.width()
    return False


def clipped_texts(*roots: QWidget) -> list[str]:
    """Every visible label, button and picker under ``roots`` whose text is cut off."""
    found = []
    for root in roots:
        for widget in [root, *root.findChildren(QWidget)]:
            if (
                isinstance(widget, (QLabel, QPushButton, QComboBox))
                and widget.isVisible()
                and clipped(widget)
            ):
                name = widget.objectName() or type(widget).__name__
                found.append(f"{name} {widget.text() if hasattr(widget, 'text') else widget.currentText()!r}")
    return found


def cut_headers(view: QAbstractItemView, columns: int | None = None) -> list[str]:
    """Titles of the first ``columns`` (all by default) whose header is narrower than its text or
    does not fit in the view's width."""
    header = view.header() if hasattr(view, "header") else view.horizontalHeader()
    margin = 2 * header.style().pixelMetric(QStyle.PixelMetric.PM_HeaderMargin, None, header)
    found = []
    for section in range(header.count() if columns is None else columns):
        title = str(view.model().headerData(section, Qt.Orientation.Horizontal))
        needed = header.fontMetrics().horizontalAdvance(title) + margin
        end = header.sectionViewportPosition(section) + header.sectionSize(section)
        if header.sectionSize(section) < needed or end > view.viewport().width():
            found.append(title)
    return found


def in_sight(dock: QDockWidget) -> bool:
    """Shown and docked, and not a tab behind another (Qt keeps those "visible", out of sight)."""
    return dock.isVisible() and not dock.isFloating() and not dock.visibleRegion().isEmpty()


def in_window(window, widget: QWidget) -> QRect:
    return QRect(widget.mapTo(window, widget.rect().topLeft()), widget.size())


def overlaps(window) -> list[str]:
    """Pairs of the window's regions (central area, visible docked docks) that overlap, and any
    region that reaches past the window's edge."""
    regions = {"centre": in_window(window, window.centralWidget())}
    for key, dock in window.parts.docks.items():
        if in_sight(dock):
            regions[key] = in_window(window, dock)
    found = [f"{key} outside the window" for key, rect in regions.items() if not window.rect().contains(rect)]
    keys = list(regions)
    for i, a in enumerate(keys):
        found += [f"{a} and {b}" for b in keys[i + 1 :] if regions[a].intersects(regions[b])]
    return found


def dock_sizes(window) -> dict[str, tuple[int, int]]:
    return {key: dock.size().toTuple() for key, dock in window.parts.docks.items() if in_sight(dock)}


def assert_roomy(window, size: tuple[int, int]) -> None:
    """What every size must give: room for the graph, the table and the form, nothing cut off."""
    p = window.parts
    assert window.size().toTuple() == size  # the panels' minimum sizes fit in the window
    assert overlaps(window) == []
    wide, tall = GRAPH_AT_LEAST[size]
    assert p.graph.width() >= wide and p.graph.height() >= tall, (p.graph.size(), size)
    assert p.split.orientation() == Qt.Orientation.Vertical  # not wide: the table goes below the graph
    assert in_window(window, p.layers).top() >= in_window(window, p.graph).bottom()
    assert p.layers.width() == p.graph.width()  # …at the graph's full width
    if size[0] >= 1400:
        assert p.layers.width() >= TABLE_COLUMNS_FIT
    # Optimize runs the full height on the right: its form keeps some height even at 700 px.
    optimize, jobs = in_window(window, p.docks["optimize"]), in_window(window, p.docks["jobs"])
    assert optimize.bottom() > jobs.top() and optimize.left() > jobs.right()  # beside Jobs, not above
    form = p.optimize.form.visibleRegion().boundingRect()
    assert p.optimize.parameters.viewport().height() >= 100 and form.height() > 0
    # Jobs: short (an almost empty table takes little height), its log beside the table.
    assert p.docks["jobs"].height() <= 0.2 * size[1]
    assert p.jobs.view.viewport().height() >= 2 * p.jobs.view.verticalHeader().defaultSectionSize()
    assert in_window(window, p.jobs.log).left() > in_window(window, p.jobs.view).right()
    assert cut_headers(p.jobs.view) == []  # every column of the jobs table, titles whole
    assert cut_headers(p.lineage.view, columns=2) == []  # a version's name and size, at least
    assert 0.15 * size[0] <= p.docks["lineage"].width() <= 0.25 * size[0]  # narrow, not squeezed
    roots = [*(d for d in p.docks.values() if in_sight(d)), window.statusBar()]
    assert clipped_texts(*roots) == []


def save_views(qtbot, window, size: tuple[int, int]) -> None:
    """The Graph, Charts and Compare tabs, the Recipe dock and the Settings dialog."""
    p, tag = window.parts, f"{size[0]}x{size[1]}"
    window.show_graph_tab()
    qtbot.wait(500)  # only for the picture: the web view repaints a resized page on its own time
    save_screenshot(window, f"layout-graph-{tag}")
    window.show_charts_tab()
    qtbot.waitUntil(lambda: p.charts.content is not None and p.charts.content.isVisible())
    assert clipped_texts(p.charts.content) == []
    save_screenshot(window, f"layout-charts-{tag}")
    p.lineage.select(1)
    window.compare_selected()
    save_screenshot(window, f"layout-compare-{tag}")
    window.show_graph_tab()
    p.docks["recipe"].raise_()
    qtbot.waitUntil(p.recipe.isVisible)
    assert clipped_texts(p.docks["recipe"]) == []
    save_screenshot(window, f"layout-recipe-{tag}")
    p.docks["optimize"].raise_()
    qtbot.waitUntil(p.optimize.isVisible)
    window.open_settings()
    dialog = window.findChild(QDialog, "settingsDialog")
    qtbot.waitExposed(dialog)
    assert clipped_texts(dialog) == []
    save_screenshot(dialog, f"layout-settings-{tag}")
    dialog.reject()
    dialog.deleteLater()


# -- the test ------------------------------------------------------------------------------------------


def test_the_window_has_room_at_every_size_and_regrows(qtbot, make_window, demo_project: Path) -> None:
    window = make_window()
    p = window.parts
    for size in [(1600, 1000), (1024, 700)]:
        resize(qtbot, window, *size)
        assert clipped_texts(p.welcome) == []
        save_screenshot(window, f"layout-welcome-{size[0]}x{size[1]}")

    resize(qtbot, window, 1600, 1000)
    open_project(qtbot, window, demo_project)
    wait_for_plugins(qtbot, window)
    qtbot.waitUntil(lambda: p.layers.model.rowCount() > 0 and p.graph.ready, timeout=WAIT_MS)
    roomy = dock_sizes(window)
    for size in [(1600, 1000), (1400, 900), (1024, 700)]:
        resize(qtbot, window, *size)
        assert_roomy(window, size)
        if size != (1400, 900):
            save_views(qtbot, window, size)

    resize(qtbot, window, 1600, 1000)  # grown back: the docks have their room again
    assert dock_sizes(window) == roomy
    assert_roomy(window, (1600, 1000))


def test_a_dock_size_the_user_chose_survives_shrinking_and_growing(qtbot, make_window) -> None:
    window = make_window()
    lineage = window.parts.docks["lineage"]
    resize(qtbot, window, 1600, 1000)
    # Drag the separator between the lineage and the centre 100 px to the right, as a user does.
    x = (lineage.geometry().right() + window.centralWidget().geometry().left()) // 2 + 1
    y = lineage.geometry().center().y()
    chosen = lineage.width() + 100
    qtbot.mouseMove(window, QPoint(x, y))
    qtbot.mousePress(window, Qt.MouseButton.LeftButton, pos=QPoint(x, y))
    qtbot.mouseMove(window, QPoint(x + 100, y))
    qtbot.waitUntil(lambda: lineage.width() == chosen)  # the window moves separators on its next turn
    qtbot.mouseRelease(window, Qt.MouseButton.LeftButton, pos=QPoint(x + 100, y))
    resize(qtbot, window, 1024, 700)
    assert abs(lineage.width() - chosen * 1024 / 1600) <= 1  # its share of the window, not its pixels
    resize(qtbot, window, 1600, 1000)
    assert abs(lineage.width() - chosen) <= 1
    window.reset_layout()  # View ▸ Reset Layout: back to the first shares, at 1400×900
    qtbot.waitUntil(lambda: not window.parts.dock_shares.pending)
    assert lineage.width() == round(DEFAULT_SHARES[Qt.DockWidgetArea.LeftDockWidgetArea] * 1400)


def test_a_wide_centre_puts_the_table_beside_the_graph(qtbot, make_window) -> None:
    window = make_window()
    window.parts.stack.setCurrentWidget(window.parts.tabs)  # the Graph tab, no project needed
    split = window.parts.split
    resize(qtbot, window, 2800, 1000)
    assert split.orientation() == Qt.Orientation.Horizontal
    graph, table = split.widget(0), split.widget(1)
    assert in_window(window, table).left() >= in_window(window, graph).right()
    assert abs(graph.width() / (graph.width() + table.width()) - split.share) < 0.01
    resize(qtbot, window, 1400, 900)
    assert split.orientation() == Qt.Orientation.Vertical
    assert abs(graph.height() / (graph.height() + table.height()) - split.share) < 0.01
