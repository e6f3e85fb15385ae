"""The graph tab as a daily tool: a click on a node selects its layer row, the node sidebar is
readable in a narrow pane, the layer table's key columns fit, and nodes are coloured by measured
time or quantization sensitivity, with the same figures in Netron's own node sidebar."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from graph_projects import copy_for_test, graph_project
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from uitools import UI_MARKS, WAIT_MS, open_project, save_screenshot

from studio.ui.graph_decor import heat_colour
from studio.ui.graph_view import GraphView
from studio.ui.models.layer_model import NAME_COLUMN, NAME_ROLE, SENSITIVITY_COLUMN, SORT_ROLE, TIME_COLUMNS
from studio.ui.widgets.layer_table import NAME_MIN, LayerTable

pytestmark = [*UI_MARKS, pytest.mark.slow]

# Where a node's header is on the page (CSS pixels, the web view's own): {x, y}, or null.
HEADER_AT = """
(() => {
  for (const [value, node] of window.__view__.target._table) {
    if (value && value.type && value.name === %r) {
      const box = node.element.querySelector('.node-item-type').getBoundingClientRect();
      return { x: box.left + box.width / 2, y: box.top + box.height / 2 };
    }
  }
  return null;
})()
"""
HEADER_FILL = HEADER_AT.replace(
    "const box = node.element.querySelector('.node-item-type').getBoundingClientRect();\n"
    "      return { x: box.left + box.width / 2, y: box.top + box.height / 2 };",
    "return getComputedStyle(node.element.querySelector('.node-item-type path')).fill;",
)
SIDEBAR = "(() => { const s = document.getElementById('sidebar'); return { width: s.getBoundingClientRect().width, left: s.getBoundingClientRect().left, page: window.innerWidth, text: s.innerText }; })()"


@pytest.fixture
def project(tmp_path_factory, demo_template, tmp_path: Path, _private_data_dir: Path) -> Path:
    return copy_for_test(graph_project(tmp_path_factory, demo_template), tmp_path, _private_data_dir)


def js(qtbot, graph, code: str):
    """Run ``code`` in the page; its value, through JSON (objects arrive as plain dicts)."""
    answers: list = []
    graph.run_javascript(f"JSON.stringify({code})", answers.append)
    qtbot.waitUntil(lambda: bool(answers), timeout=10_000)
    return None if answers[0] is None else json.loads(answers[0])


def rgb(hex_colour: str) -> str:
    h = hex_colour.lstrip("#")
    return "rgb({}, {}, {})".format(*(int(h[i : i + 2], 16) for i in (0, 2, 4)))


def click_node(qtbot, graph: GraphView, name: str) -> None:
    """Scroll ``name`` into view, then click its header with the mouse, as a user would."""
    with qtbot.waitSignal(graph.node_selected, timeout=10_000):
        graph.select_node(name)
    seen: list = [None]

    def settled() -> bool:  # Netron scrolls smoothly: wait until the header stands still
        qtbot.wait(60)  # a few frames apart
        at = js(qtbot, graph, HEADER_AT % name)
        still, seen[0] = at is not None and at == seen[0], at
        return still

    qtbot.waitUntil(settled, timeout=10_000)
    at = seen[0]
    target = graph.web_view.focusProxy()
    QTest.mouseClick(
        target,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
        QPoint(round(at["x"]), round(at["y"])),
    )


def top(table: LayerTable, column: int) -> str:
    """The layer with the largest figure in ``column``."""
    model = table.model
    row = max(range(model.rowCount()), key=lambda r: model.index(r, column).data(SORT_ROLE))
    return model.layer(row).name


def selected_layer(table: LayerTable) -> str | None:
    index = table.view.selectionModel().currentIndex()
    return index.data(NAME_ROLE) if index.isValid() else None


def test_graph_clicks_select_rows_and_nodes_wear_their_figures(qtbot, make_window, project: Path):
    window = make_window()
    window.resize(1400, 900)
    open_project(qtbot, window, project)
    graph, table = window.parts.graph, window.parts.layers
    qtbot.waitUntil(lambda: graph.ready and table.model.rowCount() > 10, timeout=WAIT_MS)
    qtbot.waitUntil(
        lambda: js(qtbot, graph, "window.__studioAttached") == "context-open-attachment", timeout=WAIT_MS
    )

    # Graph → table: a click on a node selects and shows its row, and nothing echoes back.
    name = table.model.layer(
        next(r for r in range(table.model.rowCount()) if table.model.layer(r).op == "Conv" and r > 4)
    ).name
    echoes: list[str] = []
    table.layer_activated.connect(echoes.append)
    with qtbot.waitSignal(graph.node_clicked, timeout=10_000) as clicked:
        click_node(qtbot, graph, name)
    assert clicked.args == [name]
    qtbot.waitUntil(lambda: selected_layer(table) == name, timeout=10_000)
    assert echoes == []
    row = table.view.selectionModel().currentIndex()
    assert table.view.viewport().rect().intersects(table.view.visualRect(row))
    # The node's sidebar lists the measured figures under Metrics (the attachment).
    source_row = table.model.row_of(name)
    time_text, share_text = (table.model.index(source_row, c).data() for c in TIME_COLUMNS)
    qtbot.waitUntil(lambda: "METRICS" in js(qtbot, graph, SIDEBAR)["text"], timeout=10_000)
    metrics = js(qtbot, graph, SIDEBAR)["text"].split("METRICS", 1)[1]
    assert time_text in metrics and share_text in metrics

    # Colour by time: v1 was timed per layer; sensitivity is only a quantize.auto version's.
    colour = graph.colour_by
    items = colour.choice.model()
    assert items.item(1).isEnabled() and not items.item(2).isEnabled()
    assert "quantize.auto" in items.item(2).toolTip()
    QTest.keyClick(colour.choice, Qt.Key.Key_Down)
    assert colour.key == "time"
    slowest = top(table, TIME_COLUMNS[0])
    hottest = rgb(heat_colour(1.0)[0])
    qtbot.waitUntil(lambda: js(qtbot, graph, HEADER_FILL % slowest) == hottest, timeout=10_000)
    assert colour.high.text().endswith(" ms") and colour.strip.isVisible()
    assert not table.view.isColumnHidden(TIME_COLUMNS[0]) and table.view.isColumnHidden(SENSITIVITY_COLUMN)
    qtbot.wait(300)
    save_screenshot(window, "graph-colour-by-time-1400x900")

    # The INT8 version made by quantize.auto: sensitivity on the graph and in the table.
    lineage = window.parts.lineage
    QTest.mouseClick(
        lineage.view.viewport(),
        Qt.MouseButton.LeftButton,
        pos=lineage.view.visualRect(lineage.model.index_of(3)).center(),
    )
    qtbot.waitUntil(lambda: graph.ready and items.item(2).isEnabled(), timeout=WAIT_MS)
    assert not items.item(1).isEnabled() and "studio bench v3 --layers" in items.item(1).toolTip()
    assert colour.key == "op"  # time is gone with v1
    QTest.keyClick(colour.choice, Qt.Key.Key_Down)  # skips the disabled Time
    assert colour.key == "sensitivity"
    assert not table.view.isColumnHidden(SENSITIVITY_COLUMN)
    sensitive = top(table, SENSITIVITY_COLUMN)
    qtbot.waitUntil(lambda: js(qtbot, graph, HEADER_FILL % sensitive) == hottest, timeout=10_000)
    qtbot.wait(300)
    save_screenshot(window, "graph-colour-by-sensitivity-1400x900")
    window.resize(1024, 700)
    qtbot.wait(500)
    assert not table.view.horizontalScrollBar().isVisible()  # every shown column fits the pane
    save_screenshot(window, "graph-colour-by-sensitivity-1024x700")

    # A narrow pane: the node sidebar covers the page, every value readable; closed, it is gone.
    narrow = GraphView(colour_by=False)
    qtbot.addWidget(narrow)
    narrow.resize(450, 700)
    narrow.show()
    narrow.show_file(graph.path)
    qtbot.waitUntil(lambda: narrow.ready, timeout=WAIT_MS)
    click_node(qtbot, narrow, sensitive)
    qtbot.waitUntil(lambda: js(qtbot, narrow, SIDEBAR)["left"] <= 0.5, timeout=10_000)
    shown = js(qtbot, narrow, SIDEBAR)
    assert shown["width"] == shown["page"]
    assert js(qtbot, narrow, "getComputedStyle(document.getElementById('toolbar')).display") == "none"
    qtbot.wait(300)
    save_screenshot(narrow, "graph-sidebar-450px")
    QTest.keyClick(narrow.web_view.focusProxy(), Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: js(qtbot, narrow, SIDEBAR)["left"] >= shown["page"], timeout=10_000)


@pytest.mark.parametrize("width", [650, 450])
def test_the_layer_tables_key_columns_fit(qtbot, width: int):
    from studio.core.graph import Layer

    table = LayerTable()
    qtbot.addWidget(table)
    table.resize(width, 400)
    table.show()
    layers = [
        Layer("/features/features.0/Conv", "Conv", (1, 32, 28, 28), 288, 225_792),
        Layer("/features/features.2/Relu", "Relu", (1, 32, 28, 28), 0, 0),
        Layer("/features/features.13/MaxPool", "MaxPool", (1, 128, 7, 7), 0, 0),
        Layer("/features/features.15/GlobalAveragePool", "GlobalAveragePool", (1, 128, 1, 1), 0, 6_272),
        Layer("/classifier/classifier.1/Gemm", "Gemm", (1, 10), 1_290, 1_280),
        Layer("/features/features.10/Conv", "Conv", (1, 128, 14, 14), 147_456, 28_901_376),
    ]
    times = {layer.name: {"ms": 0.25 * (i + 1), "share": 0.05 * (i + 1)} for i, layer in enumerate(layers)}
    table.set_model_info("v1 baseline", layers, params=241_898, size=968_840, times=times)
    qtbot.wait(50)
    view = table.view
    shown = [c for c in range(table.model.columnCount()) if not view.isColumnHidden(c)]
    assert SENSITIVITY_COLUMN not in shown  # nothing to show: no quantize.auto here
    assert {NAME_COLUMN, 2, 3, 5, 6, TIME_COLUMNS[0]} <= set(shown)  # name, op, shape, MACs, share, time
    assert sum(view.columnWidth(c) for c in shown) <= view.viewport().width()
    assert not view.horizontalScrollBar().isVisible()
    assert view.columnWidth(NAME_COLUMN) >= NAME_MIN
    assert table.summary.height() < 3 * table.fontMetrics().height()  # one short line
    save_screenshot(table, f"layer-table-{width}px")


def test_the_metrics_attachment_is_served_only_under_the_token(tmp_path: Path):
    from studio.ui.graph_server import GraphServer

    model = tmp_path / "model.onnx"
    model.write_bytes(b"onnx bytes")
    server = GraphServer(model)
    try:
        host = f"127.0.0.1:{server.port}"
        assert server.answer(host, f"/{server.token}/attachments/metrics.json")[0] == 404  # nothing yet
        where = server.publish("metrics.json", b'{"signature": "netron:attachment"}')
        assert server.answer(host, f"/{server.token}/{where}") == (
            200,
            "application/json",
            b'{"signature": "netron:attachment"}',
        )
        assert server.answer(host, f"/{where}")[0] == 404  # not without the token
        assert server.answer("evil.example:80", f"/{server.token}/{where}")[0] == 403
        assert server.answer(host, f"/{server.token}/attachments/../data/model.onnx")[0] == 404
    finally:
        server.close()
