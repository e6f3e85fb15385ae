"""The lineage as the centre: a version's context menu, driven by real clicks and key presses.

Export (ONNX, and TensorRT's files where no engine can be built), the project report, compare
with the parent, measure again, rename, copy the path and delete, each checked on disk and in
the project's database, not only on screen."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QContextMenuEvent, QGuiApplication
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QInputDialog,
    QLineEdit,
    QMessageBox,
    QToolBar,
)
from uitools import UI_MARKS, WAIT_MS, open_project, save_screenshot

from studio.project import Project

pytestmark = UI_MARKS
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project_with_child(demo_template, tmp_path_factory) -> Path:
    """The demo with v2 = quantize.dynamic of v1, made by the real command line once."""
    source, trust = demo_template
    project = tmp_path_factory.mktemp("lineage") / "digits-demo"
    shutil.copytree(source, project)
    data = tmp_path_factory.mktemp("lineage-data")
    shutil.copy(trust, data / "trust.json")  # the demo's architecture file, trusted as by its maker
    subprocess.run(
        [sys.executable, "-m", "studio", "optimize", "v1", "quantize.dynamic", "--project", str(project)],
        check=True, cwd=REPO, capture_output=True, timeout=600,
        env={**os.environ, "STUDIO_DATA_DIR": str(data), "PYTHONWARNINGS": "ignore"},
    )  # fmt: skip
    return project


@pytest.fixture
def child_project(project_with_child, tmp_path, demo_project) -> Path:
    """A fresh copy for each test, trusted like ``demo_project`` (whose fixture sets the trust up)."""
    copy = tmp_path / "with-child"
    shutil.copytree(project_with_child, copy)
    return copy


def open_menu(qtbot, window, version_id: int):
    """Right-click the version's row, as the mouse does: a context-menu event on the tree's viewport."""
    tree = window.parts.lineage
    view = tree.view
    pos = view.visualRect(tree.model.index_of(version_id)).center()
    event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, pos, view.viewport().mapToGlobal(pos))
    QApplication.sendEvent(view.viewport(), event)
    qtbot.waitUntil(
        lambda: window.versions.menu is not None and window.versions.menu.isVisible(), timeout=5000
    )
    return window.versions.menu


def choose(qtbot, menu, text: str) -> None:
    action = next(a for a in menu.actions() if a.text() == text)
    assert action.isEnabled(), f"{text} is disabled"
    qtbot.mouseClick(menu, Qt.MouseButton.LeftButton, pos=menu.actionGeometry(action).center())


def visible(cls, name: str):
    found = [w for w in QApplication.topLevelWidgets() if isinstance(w, cls) and w.objectName() == name]
    return next((w for w in found if w.isVisible()), None)


def wait_for(qtbot, cls, name: str):
    try:
        qtbot.waitUntil(lambda: visible(cls, name) is not None, timeout=WAIT_MS)
    except qtbot.TimeoutError:
        shown = [(type(w).__name__, w.objectName()) for w in QApplication.topLevelWidgets() if w.isVisible()]
        raise AssertionError(f"no {name} shown; on screen: {shown}") from None
    return visible(cls, name)


def test_export_onnx_and_tensorrt_from_the_context_menu(qtbot, make_window, demo_project, tmp_path):
    window = make_window()
    open_project(qtbot, window, demo_project)
    menu = open_menu(qtbot, window, 1)
    save_screenshot(menu, "version-menu")
    assert [a.text() for a in menu.actions() if a.text()] == [
        "Export…", "Compare with Parent", "Measure Again", "Rename…", "Copy File Path",
        "Write Project Report…", "Delete…",
    ]  # fmt: skip
    assert not next(a for a in menu.actions() if a.text() == "Compare with Parent").isEnabled()  # an import
    choose(qtbot, menu, "Export…")
    dialog = wait_for(qtbot, QDialog, "exportDialog")
    assert dialog.path.text() == str(demo_project / "exports" / "baseline.onnx")  # the CLI's default
    out = tmp_path / "out" / "digits.onnx"
    dialog.path.clear()
    qtbot.keyClicks(dialog.path, str(out))
    save_screenshot(dialog, "export-dialog")
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    result = wait_for(qtbot, QMessageBox, "exportResult")
    assert result.text().startswith(f"wrote {out} ")
    assert "ONNX checker: ok" in result.text()
    onnx.checker.check_model(onnx.load(str(out)))
    qtbot.mouseClick(result.button(QMessageBox.StandardButton.Ok), Qt.MouseButton.LeftButton)

    toolbar = window.findChild(QToolBar, "mainToolbar")
    qtbot.mouseClick(toolbar.widgetForAction(window.actions["export"]), Qt.MouseButton.LeftButton)
    dialog = wait_for(qtbot, QDialog, "exportDialog")
    qtbot.mouseClick(dialog.tensorrt, Qt.MouseButton.LeftButton)
    assert dialog.path.text().endswith("baseline.engine") and dialog.batches.isVisible()
    qtbot.mouseClick(
        dialog.dynamic_batch, Qt.MouseButton.LeftButton, pos=QPoint(4, dialog.dynamic_batch.height() // 2)
    )
    dialog.max_batch.lineEdit().selectAll()
    qtbot.keyClicks(dialog.max_batch, "8")
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    result = wait_for(qtbot, QMessageBox, "exportResult")
    text = result.text()
    trtexec = next(demo_project.glob("exports/*trtexec*"), None)
    assert "so no engine was built" in text and trtexec is not None, text
    assert "--maxShapes=input:8x1x28x28" in trtexec.read_text(), trtexec.read_text()


def test_report_rename_and_copy_path(qtbot, make_window, demo_project, tmp_path):
    window = make_window()
    open_project(qtbot, window, demo_project)
    choose(qtbot, open_menu(qtbot, window, 1), "Write Project Report…")
    files = wait_for(qtbot, QFileDialog, "reportFileDialog")
    name = files.findChild(QLineEdit, "fileNameEdit")
    name.clear()
    qtbot.keyClicks(name, "digits-report")  # in the project's folder, where the dialog starts
    save = files.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Save)
    qtbot.mouseClick(save, Qt.MouseButton.LeftButton)
    box = wait_for(qtbot, QMessageBox, "reportResult")
    report = demo_project / "digits-report.html"  # the suffix added, as the dialog promises
    assert box.text() == f"Wrote {report} (1 versions, 1 measurements)." and report.is_file()
    assert "baseline" in report.read_text()
    box.close()

    tree = window.parts.lineage
    tree.view.setFocus()
    qtbot.keyClick(tree.view, Qt.Key.Key_F2)
    rename = wait_for(qtbot, QInputDialog, "renameDialog")
    field = rename.findChild(QLineEdit)
    field.selectAll()
    qtbot.keyClicks(field, "float-reference")
    qtbot.keyClick(field, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.controller.figures[0].name == "float-reference", timeout=WAIT_MS)
    assert "float-reference" in tree.model.index_of(1).data()
    with Project.open(demo_project) as project:
        assert project.store.get_version(1).name == "float-reference"

    choose(qtbot, open_menu(qtbot, window, 1), "Copy File Path")
    copied = Path(QGuiApplication.clipboard().text())
    assert copied.is_file() and copied.is_relative_to(demo_project)


@pytest.mark.slow
def test_compare_with_parent_then_delete(qtbot, make_window, child_project):
    window = make_window()
    open_project(qtbot, window, child_project)
    tree = window.parts.lineage
    assert tree.model.version_count() == 2
    tree.select(2)
    qtbot.waitUntil(lambda: window.hint.isVisible(), timeout=WAIT_MS)
    assert window.hint.text().startswith("v2 is ")  # faster than v1, or not: either way, it says which

    choose(qtbot, open_menu(qtbot, window, 2), "Compare with Parent")
    assert window.parts.tabs.currentIndex() == 2
    assert sorted(tree.selected_ids()) == [1, 2]
    assert [v.id for v in window.parts.compare.model.versions] == [1, 2]

    tree.select(1)
    tree.view.setFocus()
    qtbot.keyClick(tree.view, Qt.Key.Key_Delete)
    refusal = wait_for(qtbot, QMessageBox, "deleteVersionDialog")
    assert refusal.text() == "v1 has versions made from it (v2): delete those first"
    qtbot.mouseClick(refusal.button(QMessageBox.StandardButton.Close), Qt.MouseButton.LeftButton)

    with Project.open(child_project) as project:
        artifact = project.artifact_dir(project.store.get_version(2).artifact)
    assert artifact.is_dir()
    tree.select(2)
    tree.view.setFocus()
    qtbot.keyClick(tree.view, Qt.Key.Key_Delete)
    confirm = wait_for(qtbot, QMessageBox, "deleteVersionDialog")
    assert confirm.text() == "Delete v2 " + window.controller.figures[1].name + "?"
    save_screenshot(confirm, "delete-version")
    delete = next(b for b in confirm.buttons() if b.text() == "Delete")
    qtbot.mouseClick(delete, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tree.model.version_count() == 1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.current_version == 1, timeout=WAIT_MS)
    assert not artifact.exists()
    with Project.open(child_project) as project:
        assert [v.id for v in project.store.list_versions()] == [1]
