"""The graph (Netron in a web view, loopback only), the charts and the compare view, with screenshots
of each saved under test-output/screenshots/ for a person to look at."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest
from PySide6.QtCore import Qt
from uitools import UI_MARKS, WAIT_MS, open_project, save_screenshot, submit

from studio.ui.graph_view import LOOPBACK_HOSTS, blocked_requests

pytestmark = UI_MARKS


def js(qtbot, view, code: str):
    """Run JavaScript in the graph page and wait for its answer."""
    answers: list = []
    view.run_javascript(code, answers.append)
    qtbot.waitUntil(lambda: bool(answers), timeout=10_000)
    return answers[0]


def wait_graph(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.parts.graph.ready, timeout=WAIT_MS)


@pytest.mark.slow
def test_graph_is_served_locally_and_follows_the_layer_table(qtbot, window, demo_project: Path):
    open_project(qtbot, window, demo_project)
    wait_graph(qtbot, window)
    graph = window.parts.graph
    url = graph.web_view.url()
    assert url.host() == "127.0.0.1"
    assert all(urlparse(u).hostname not in LOOPBACK_HOSTS for u in blocked_requests())
    # The cookie question was answered before the page ran: no prompt, no request to ipinfo.io.
    assert "consent=" in js(qtbot, graph, "document.cookie")
    assert "cookies" not in js(qtbot, graph, "document.getElementById('message-text').innerText")
    assert not any("ipinfo" in u for u in blocked_requests())
    # The build date the 180-day check reads is gone, so the check sees today's date.
    assert js(qtbot, graph, "document.querySelector('meta[name=\"date\"]') === null") is True
    age_days = js(qtbot, graph, "(Date.now() - window.__view__._host._environment.date) / 86400000")
    assert abs(age_days) < 1
    # Shapes' angle brackets have a font even on a machine without a CJK font.
    loaded = "[...document.fonts].some(f => f.family.includes('Studio Brackets') && f.status === 'loaded')"
    assert js(qtbot, graph, loaded) is True

    table = window.parts.layers
    row = next(r for r in range(table.proxy.rowCount()) if table.proxy.index(r, 2).data() == "Conv")
    name = table.proxy.index(row, 1).data()
    with qtbot.waitSignal(graph.node_selected, timeout=10_000) as selected:
        qtbot.mouseClick(
            table.view.viewport(),
            Qt.MouseButton.LeftButton,
            pos=table.view.visualRect(table.proxy.index(row, 1)).center(),
        )
    assert selected.args == [name, True]
    assert js(qtbot, graph, "window.__view__.target._selection.size") == 1
    save_screenshot(window, "graph")


@pytest.mark.slow
def test_charts_jobs_and_compare_after_a_quantization(qtbot, window, demo_project: Path, tmp_path: Path):
    open_project(qtbot, window, demo_project)
    qtbot.waitUntil(lambda: window.parts.optimize.technique.count() > 0, timeout=WAIT_MS)
    panel = window.parts.optimize
    panel.set_technique("quantize.auto")
    panel.dataset.set_source("digits")
    panel.form.set_values({"cosine_floor": 0.9995, "mode": "static"})  # tight: forces the sensitivity search
    job = submit(qtbot, window, 1, "quantize.auto", panel.form.values(), dataset="digits")
    window.parts.jobs.select_job(job)
    qtbot.waitUntil(lambda: window.parts.jobs.model.find(job).state == "running", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.parts.jobs.model.find(job).progress > 0.1, timeout=WAIT_MS)
    save_screenshot(window.parts.docks["jobs"], "jobs-running")
    qtbot.waitUntil(lambda: not window.parts.jobs.model.find(job).active, timeout=WAIT_MS)
    row = window.parts.jobs.model.find(job)
    assert row.state == "succeeded", row.message
    qtbot.waitUntil(lambda: window.parts.jobs.model.active_count() == 0, timeout=WAIT_MS)
    assert window.parts.jobs.log.toPlainText().strip()  # the job's log is shown

    def measured_child():
        return next(
            (f for f in window.controller.figures if f.parent_id == 1 and f.latency_ms is not None), None
        )

    qtbot.waitUntil(lambda: measured_child() is not None, timeout=WAIT_MS)
    new = measured_child()
    assert new.accuracy is not None
    window.parts.lineage.select(new.id)
    window.show_charts_tab()
    charts = window.parts.charts.content
    assert len(charts.scatter.scatter.data) == 2
    qtbot.waitUntil(lambda: charts.scatter.isVisible() and charts.scatter.width() > 300)
    qtbot.wait(100)  # let the freshly built charts lay out and paint
    save_screenshot(window, "window-charts")
    for tab, name in (
        (charts.scatter, "chart-accuracy-latency"),
        (charts.bars, "chart-size-latency"),
        (charts.before_after, "chart-before-after"),
        (charts.sensitivity, "chart-sensitivity"),
    ):
        charts.tabs.setCurrentWidget(tab)
        qtbot.wait(50)
        save_screenshot(charts, name)
    assert charts.sensitivity.rows and any(r["kept_float"] for r in charts.sensitivity.rows)

    charts.tabs.setCurrentWidget(charts.scatter)
    charts.export_image(tmp_path / "scatter.png")
    charts.export_image(tmp_path / "scatter.svg")
    charts.export_csv(tmp_path / "figures.csv")
    assert (tmp_path / "scatter.png").stat().st_size > 1000
    assert "<svg" in (tmp_path / "scatter.svg").read_text()
    lines = (tmp_path / "figures.csv").read_text().splitlines()
    assert len(lines) == 3 and lines[0].startswith("id,name")

    window.parts.lineage.select(1)
    window.parts.lineage.select(new.id, add=True)
    window.compare_selected()
    compare = window.parts.compare
    assert compare.model.columnCount() == 2
    assert any(compare.model.cell(row, 1)[2] == 1 for row in range(compare.model.rowCount()))
    compare.show_graphs.setChecked(True)
    qtbot.waitUntil(lambda: all(g.ready for g in compare.graphs), timeout=WAIT_MS)
    assert {g.path.name for g in compare.graphs} >= {window.controller.version(new.id).main_file}
    qtbot.wait(300)  # drawn: let the web views composite the frame before it is grabbed
    save_screenshot(window, "window-compare")
    window.show_graph_tab()
    main_file = window.controller.version(new.id).main_file
    qtbot.waitUntil(
        lambda: window.parts.graph.path is not None and window.parts.graph.path.name == main_file,
        timeout=WAIT_MS,
    )
    wait_graph(qtbot, window)
    qtbot.wait(300)  # drawn: let the web view composite the frame before it is grabbed
    save_screenshot(window, "window-graph")
