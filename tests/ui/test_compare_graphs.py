"""Compare by real clicks: what each graph page draws, and the graph diff's colours and legend.

The pages are read, not the files handed to them: a pane showing the wrong version would pass a
test of file names. The pruned version's first convolution has 16 filters where the baseline's
has 32; Netron draws an initializer's shape on its node (``W〈16×1×3×3〉``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from graph_projects import copy_for_test, graph_project
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from uitools import UI_MARKS, WAIT_MS, open_project, save_screenshot

from studio.core.graph_diff import ADDED, PRECISION, SHAPE
from studio.ui.graph_decor import DIFF_COLOURS

pytestmark = [*UI_MARKS, pytest.mark.slow]

FIRST_CONV = "/features/features.0/Conv"
DRAWN_TEXT = "Array.from(document.querySelectorAll('#canvas text')).map((t) => t.textContent).join('\\n')"
# The computed fill of a node's header, as the page paints it: "rgb(r, g, b)", or null.
HEADER_FILL = """
(() => {
  const target = window.__view__.target;
  for (const [value, node] of target._table) {
    if (value && value.type && value.name === %r) {
      return getComputedStyle(node.element.querySelector('.node-item-type path')).fill;
    }
  }
  return null;
})()
"""


@pytest.fixture
def project(tmp_path_factory, demo_template, tmp_path: Path, _private_data_dir: Path) -> Path:
    return copy_for_test(graph_project(tmp_path_factory, demo_template), tmp_path, _private_data_dir)


def js(qtbot, graph, code: str):
    answers: list = []
    graph.run_javascript(code, answers.append)
    qtbot.waitUntil(lambda: bool(answers), timeout=10_000)
    return answers[0]


def rgb(hex_colour: str) -> str:
    h = hex_colour.lstrip("#")
    return "rgb({}, {}, {})".format(*(int(h[i : i + 2], 16) for i in (0, 2, 4)))


def click_versions(qtbot, window, first: int, second: int) -> None:
    """Click one version in the lineage tree, Ctrl+click another, press Ctrl+Shift+C."""
    tree = window.parts.lineage.view
    for version, modifier in (
        (first, Qt.KeyboardModifier.NoModifier),
        (second, Qt.KeyboardModifier.ControlModifier),
    ):
        rect = tree.visualRect(window.parts.lineage.model.index_of(version))
        QTest.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, modifier, rect.center())
    QTest.keyClick(
        tree, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    qtbot.waitUntil(lambda: window.parts.tabs.currentWidget() is window.parts.compare, timeout=10_000)
    assert [v.id for v in window.parts.compare.model.versions] == [first, second]


def test_compare_draws_each_version_and_the_diff_colours_what_changed(qtbot, make_window, project: Path):
    window = make_window()
    window.resize(1600, 1000)
    open_project(qtbot, window, project)
    compare = window.parts.compare
    click_versions(qtbot, window, 1, 2)

    # Side by side: each page draws its own version (32 filters against 16).
    QTest.mouseClick(compare.show_graphs, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: len(compare.graphs) == 2 and all(g.ready for g in compare.graphs), timeout=WAIT_MS
    )
    reference, pruned = (js(qtbot, g, DRAWN_TEXT) for g in compare.graphs)
    assert "32×1×3×3" in reference and "16×1×3×3" not in reference
    assert "16×1×3×3" in pruned and "32×1×3×3" not in pruned
    qtbot.wait(300)  # drawn: let the web views composite the frame before it is grabbed
    save_screenshot(window, "compare-side-by-side-1600x1000")

    # The diff: one drawing (the pruned version's), its nodes coloured, a legend and a table.
    QTest.mouseClick(compare.show_diff, Qt.MouseButton.LeftButton)
    assert not compare.show_graphs.isChecked()
    diff_view = compare.diff_view
    qtbot.waitUntil(lambda: diff_view.graph.ready and diff_view.diff is not None, timeout=WAIT_MS)
    assert "16×1×3×3" in js(qtbot, diff_view.graph, DRAWN_TEXT)
    counts = diff_view.diff.counts()
    assert counts[SHAPE] > 0 and counts[ADDED] == 0
    assert diff_view.legend.counts[SHAPE].text() == f"changed shape {counts[SHAPE]}"
    fill = rgb(DIFF_COLOURS[SHAPE][0])
    qtbot.waitUntil(lambda: js(qtbot, diff_view.graph, HEADER_FILL % FIRST_CONV) == fill, timeout=10_000)
    row = diff_view.model.row_of(FIRST_CONV)
    assert "channels 32 → 16" in diff_view.model.change(row).what

    # A row selects its node in the drawing.
    rect = diff_view.table.visualRect(diff_view.model.index(row, 0))
    with qtbot.waitSignal(diff_view.graph.node_selected, timeout=10_000) as selected:
        QTest.mouseClick(diff_view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert selected.args == [FIRST_CONV, True]
    qtbot.wait(300)
    save_screenshot(window, "compare-graph-diff-pruned-1600x1000")

    # Against the INT8 version (quantize.auto may keep the most sensitive layers in float): a
    # convolution it quantized changed precision, not shape.
    click_versions(qtbot, window, 1, 3)
    qtbot.waitUntil(
        lambda: (
            diff_view.graph.ready and diff_view.diff is not None and diff_view.diff.counts()[PRECISION] > 0
        ),
        timeout=WAIT_MS,
    )
    conv = next(n for n in diff_view.diff.nodes if n.op_after == "Conv" and n.status == PRECISION)
    assert conv.changes == ("FP32 → INT8",)  # wrapped in QuantizeLinear/DequantizeLinear, name kept
    fill = rgb(DIFF_COLOURS[PRECISION][0])
    qtbot.waitUntil(lambda: js(qtbot, diff_view.graph, HEADER_FILL % conv.name) == fill, timeout=10_000)
    assert diff_view.legend.counts[ADDED].text() == f"added {diff_view.diff.counts()[ADDED]}"
    window.resize(1024, 700)
    qtbot.waitUntil(lambda: window.width() == 1024, timeout=5000)  # nothing in the diff holds it wider
    qtbot.wait(500)
    save_screenshot(window, "compare-graph-diff-int8-1024x700")
