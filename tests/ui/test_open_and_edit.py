"""Opening models (with and without a project, trusted or not), large graphs, the recipe editor,
settings and shortcuts."""

from __future__ import annotations

import functools
import itertools
import os
import sys
import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMenu, QMessageBox
from uitools import UI_MARKS, WAIT_MS

from studio.core.resources import resource
from studio.core.trust import TrustStore
from studio.ui.opening import TRUST_QUESTION_NAME
from studio.ui.widgets.recipe_editor import RecipeEditor, StepDraft
from studio.ui.widgets.settings_dialog import SettingsDialog

pytestmark = UI_MARKS


def wait_versions(qtbot, window, count: int) -> None:
    qtbot.waitUntil(lambda: window.parts.lineage.model.version_count() == count, timeout=WAIT_MS)


def test_opening_a_model_without_a_project_puts_it_in_the_models_project(qtbot, window, settings):
    window.open_model(resource("demo", "digits_cnn.onnx"))
    wait_versions(qtbot, window, 1)
    assert window.controller.session.root == (settings.data_folder / "projects" / "models").resolve()
    qtbot.waitUntil(lambda: window.parts.layers.model.rowCount() > 10, timeout=WAIT_MS)
    assert {window.parts.layers.model.layer(r).op for r in range(window.parts.layers.model.rowCount())} >= {
        "Conv",
        "Gemm",
    }
    assert settings.recent("models")[0].endswith("digits_cnn.onnx")


def test_a_file_that_fails_to_open_is_not_added_to_recent_models(qtbot, window, settings, tmp_path: Path):
    from studio.ui.widgets.errors import ERROR_DIALOG_NAME

    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    window.open_model(broken)

    def dialog() -> QMessageBox | None:
        found = [
            w for w in QApplication.topLevelWidgets() if w.objectName() == ERROR_DIALOG_NAME and w.isVisible()
        ]
        return found[0] if found else None

    qtbot.waitUntil(lambda: dialog() is not None, timeout=WAIT_MS)
    assert "broken.onnx" in dialog().text() + dialog().informativeText()
    qtbot.mouseClick(dialog().buttons()[0], Qt.MouseButton.LeftButton)
    assert str(broken.resolve()) not in settings.recent("models")
    assert not any("broken.onnx" in a.text() for menu in window.findChildren(QMenu) for a in menu.actions())


def test_an_architecture_file_runs_only_once_trusted(qtbot, window, tmp_path: Path, _private_data_dir: Path):
    window.open_project(tmp_path / "fresh", create=True)
    qtbot.waitUntil(lambda: window.controller.session is not None, timeout=WAIT_MS)
    architecture, weights = resource("demo", "digits_cnn.py"), resource("demo", "digits_cnn.safetensors")
    window.open_model(architecture, weights)

    def question() -> QMessageBox | None:
        found = [w for w in QApplication.topLevelWidgets() if w.objectName() == TRUST_QUESTION_NAME]
        return found[0] if found and found[0].isVisible() else None

    qtbot.waitUntil(lambda: question() is not None, timeout=WAIT_MS)
    assert window.parts.lineage.model.version_count() == 0  # nothing was imported before the answer
    assert "runs code" in question().informativeText()
    qtbot.mouseClick(question().button(QMessageBox.StandardButton.Yes), Qt.MouseButton.LeftButton)
    wait_versions(qtbot, window, 1)
    assert len(TrustStore(_private_data_dir / "trust.json").entries()) == 1


class FileOpens:
    """Files opened in this process while ``watching``, each with the thread that opened it.

    Python's audit hook for ``open()``, which every read of a model file (ONNX, the copy into the
    project, the graph server) goes through; installed once, it records nothing unless watching.
    """

    def __init__(self) -> None:
        self.watching = False
        self.seen: list[tuple[str, int]] = []
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple) -> None:
        if self.watching and event == "open" and isinstance(args[0], str | os.PathLike):
            self.seen.append((os.fspath(args[0]), threading.get_ident()))


@functools.cache
def file_opens() -> FileOpens:
    return FileOpens()


@pytest.mark.slow
def test_a_graph_of_a_thousand_nodes_opens_without_freezing(qtbot, window, tmp_path: Path):
    """Importing a 1,200-node model and computing its layer table happen off the UI thread: the
    event loop keeps turning while they run, and the UI thread never reads the model file."""
    import torch

    from studio.core.models import export_onnx

    layers = [m for _ in range(600) for m in (torch.nn.Linear(16, 16), torch.nn.ReLU())]
    big = export_onnx(
        torch.nn.Sequential(*layers), (torch.randn(1, 16),), tmp_path / "deep.onnx", input_names=["x"]
    )
    window.open_project(tmp_path / "big", create=True)
    qtbot.waitUntil(lambda: window.controller.session is not None, timeout=WAIT_MS)
    ui_thread = threading.get_ident()
    table = window.parts.layers.model
    resets: list[list] = []  # [when the table started to change, its rows after]
    table.modelAboutToBeReset.connect(lambda: resets.append([time.perf_counter(), None]))
    table.modelReset.connect(lambda: resets[-1].__setitem__(1, table.rowCount()))
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    opens = file_opens()
    opens.seen.clear()
    opens.watching = True
    try:
        timer.start()
        start = time.perf_counter()
        window.open_model(big)
        qtbot.waitUntil(lambda: table.rowCount() >= 1200, timeout=WAIT_MS)
    finally:
        opens.watching = False
        timer.stop()

    # From the click until the layers reach the table, the work is the background's: the model is
    # copied into the project, read and summarised. Had the UI thread done it, the event loop
    # would have stood still for about all of that time; here no stall comes near half of it.
    handed = next(when for when, rows in resets if rows is not None and rows >= 1200)
    marks = [start, *(t for t in ticks if t < handed), handed]
    longest = max(b - a for a, b in itertools.pairwise(marks))
    assert longest < (handed - start) / 2, (
        f"the event loop stood still {longest * 1000:.0f} ms of the {(handed - start) * 1000:.0f} ms "
        "it took to read the model and compute its layers"
    )
    session = window.controller.session
    (version,) = session.project.store.list_versions()
    stored = session.project.version_path(version)
    readers = [
        (Path(path).resolve(), thread) for path, thread in opens.seen if Path(path).name == "deep.onnx"
    ]
    assert {path for path, _ in readers} >= {big.resolve(), stored.resolve()}, "imported, then read"
    assert [path for path, thread in readers if thread == ui_thread] == []

    qtbot.waitUntil(lambda: window.parts.graph.ready, timeout=WAIT_MS)
    assert window.parts.graph.path == stored
    window.parts.layers.view.sortByColumn(5, Qt.SortOrder.DescendingOrder)
    assert window.parts.layers.proxy.index(0, 2).data() == "Gemm"


def test_recipe_editor_builds_checks_saves_and_loads(qtbot, tmp_path: Path):
    editor = RecipeEditor()
    qtbot.addWidget(editor)
    editor.add_step("quantize.static", {"calibration_samples": 64, "per_channel": True})
    editor.add_step("prune.structured", {"ratio": 0.25})
    assert "cannot run yet" in editor.preview.toPlainText()  # an INT8 ONNX model cannot be pruned
    editor.list.setCurrentRow(1)
    editor._move(-1)
    assert [s.technique for s in editor.steps()] == ["prune.structured", "quantize.static"]
    assert "cannot run" not in editor.preview.toPlainText()
    path = tmp_path / "recipe.yaml"
    editor.save_to(path)
    from studio.core.recipes import load_recipe

    recipe = load_recipe(path)  # the command line reads what the window wrote
    assert [s.technique for s in recipe.steps] == ["prune.structured", "quantize.static"]
    assert recipe.steps[1].params.calibration_samples == 64
    other = RecipeEditor()
    qtbot.addWidget(other)
    other.load_from(path)
    assert other.steps() == [
        StepDraft("prune.structured", {"ratio": 0.25}),
        StepDraft("quantize.static", {"calibration_samples": 64}),
    ]
    failures = []
    other.failed.connect(failures.append)
    other.add_step("quantize.static", {"calibration_samples": 1})
    assert failures and "calibration_samples" in str(failures[0])


def test_settings_are_saved_where_the_next_start_reads_them(qtbot, settings, tmp_path: Path):
    dialog = SettingsDialog(settings, ["cpu"])
    qtbot.addWidget(dialog)
    dialog.workers.setValue(3)
    dialog.executor.setText("ray://cluster:10001")
    dialog.threads.setValue(2)
    dialog.theme.setCurrentIndex(dialog.theme.findData("dark"))
    dialog.folder.setText(str(tmp_path / "elsewhere"))
    dialog.accept()
    from studio.ui.settings import StudioSettings

    again = StudioSettings(settings.path)
    assert (again.cpu_workers, again.executor, again.threads, again.theme) == (
        3,
        "ray://cluster:10001",
        2,
        "dark",
    )
    assert again.data_folder == tmp_path / "elsewhere"


def test_shortcuts_switch_views(qtbot, window):
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert window.parts.tabs.currentIndex() == 1
    qtbot.keyClick(window, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    assert window.parts.tabs.currentIndex() == 2
    assert window.actions["open_model"].shortcut().toString() == "Ctrl+O"
