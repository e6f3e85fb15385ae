"""The main window end to end: a real demo project, real worker processes, real jobs."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication, QMessageBox
from uitools import UI_MARKS, WAIT_MS, open_project, save_screenshot, submit, wait_for_plugins

from studio.ui.widgets.errors import ERROR_DIALOG_NAME

pytestmark = UI_MARKS


def choose_technique(window, name: str, dataset: str = "digits") -> None:
    panel = window.parts.optimize
    panel.set_technique(name)
    assert panel.technique.currentData() == name
    panel.dataset.set_source(dataset)


def job_state(window, job_id: int) -> str | None:
    row = window.parts.jobs.model.find(job_id)
    return None if row is None else row.state


def error_dialogs() -> list[QMessageBox]:
    return [
        w for w in QApplication.topLevelWidgets() if w.objectName() == ERROR_DIALOG_NAME and w.isVisible()
    ]


def test_first_run_offers_the_demo(window):
    assert window.parts.stack.currentWidget() is window.parts.welcome
    assert "demo" in window.parts.welcome.demo_button.text().lower()
    assert window.parts.welcome.demo_button.isDefault()
    assert not window.actions["run"].isEnabled()  # nothing to run on yet
    save_screenshot(window, "welcome")


@pytest.mark.slow
def test_quantize_the_demo_from_the_form(qtbot, window, demo_project: Path):
    open_project(qtbot, window, demo_project)
    tree = window.parts.lineage
    assert tree.model.version_count() == 1
    qtbot.waitUntil(lambda: window.parts.layers.model.rowCount() > 0, timeout=WAIT_MS)
    wait_for_plugins(qtbot, window)
    window.show_charts_tab()
    charts = window.parts.charts.content
    assert len(charts.scatter.scatter.data) == 1  # the measured baseline

    choose_technique(window, "quantize.static")
    window.parts.optimize.form.set_values({"calibration_samples": 64})
    with qtbot.waitSignal(window.controller.job_added, timeout=WAIT_MS) as added:
        qtbot.mouseClick(window.parts.optimize.run_button, Qt.MouseButton.LeftButton)
    job = added.args[0].id
    assert job_state(window, job) in ("queued", "running")
    qtbot.waitUntil(lambda: job_state(window, job) == "succeeded", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: tree.model.version_count() == 2, timeout=WAIT_MS)
    new = next(f for f in window.controller.figures if f.parent_id is not None)
    assert new.technique == "quantize.static"
    assert tree.model.index_of(new.id).isValid()
    # its measurement is queued after the step; the point appears when it is recorded
    qtbot.waitUntil(lambda: len(charts.scatter.scatter.data) == 2, timeout=WAIT_MS)
    assert new.id in [int(d) for d in charts.scatter.scatter.data["data"]]
    # The front is drawn through the measured versions that no other one beats on both latency
    # and accuracy, fastest first.
    points = {f.id: (f.latency_ms, f.accuracy) for f in window.controller.figures}

    def beaten(i: int) -> bool:
        x, y = points[i]
        return any(p != (x, y) and p[0] <= x and p[1] >= y for j, p in points.items() if j != i)

    assert charts.scatter.front_ids == sorted((i for i in points if not beaten(i)), key=lambda i: points[i])
    jobs = window.controller.session.project.store.list_jobs()
    assert sorted((r.kind, r.input_version_id, r.state) for r in jobs) == [
        ("measure", 1, "succeeded"),  # the demo's measurement of the baseline, a job like any other
        ("measure", new.id, "succeeded"),  # the new version is measured after the step; the
        ("optimize", 1, "succeeded"),  # baseline's figures were taken the same way: not again
    ]
    assert all(job_state(window, r.id) == "succeeded" for r in jobs)

    tree.select(new.id)
    window.compare_selected()
    tree.select(1, add=True, make_current=False)
    tree.select(new.id, add=True)
    window.compare_selected()
    assert window.parts.compare.model.columnCount() == 2
    window.show_charts_tab()
    charts.tabs.setCurrentWidget(charts.before_after)
    assert charts.before_after.model.columnCount() == 2


@pytest.mark.slow
def test_cancel_a_queued_and_a_running_job(qtbot, window, demo_project: Path):
    open_project(qtbot, window, demo_project)
    wait_for_plugins(qtbot, window)
    window.parts.lineage.select(1)
    choose_technique(window, "distill")
    window.parts.optimize.form.set_values({"epochs": 200})
    running = submit(qtbot, window, 1, "distill", window.parts.optimize.form.values(), dataset="digits")
    queued = submit(qtbot, window, 1, "quantize.dynamic", {}, dataset="digits")
    qtbot.waitUntil(lambda: job_state(window, running) == "running", timeout=WAIT_MS)
    panel = window.parts.jobs
    panel.select_job(queued)
    assert panel.cancel_button.isEnabled()
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: job_state(window, queued) == "cancelled", timeout=WAIT_MS)
    panel.select_job(running)
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: job_state(window, running) == "cancelled", timeout=WAIT_MS)
    assert window.controller.session.project.store.get_job(running).state == "cancelled"
    assert window.parts.lineage.model.version_count() == 1  # nothing was kept of either


@pytest.mark.slow
def test_opening_another_project_asks_before_it_stops_running_jobs(
    qtbot, window, demo_project: Path, tmp_path: Path
):
    import shutil
    import sqlite3

    from studio.ui.opening import LEAVE_QUESTION_NAME

    other = tmp_path / "other"
    shutil.copytree(demo_project, other)
    open_project(qtbot, window, demo_project)
    wait_for_plugins(qtbot, window)
    running = submit(qtbot, window, 1, "distill", {"epochs": 200}, dataset="digits")
    qtbot.waitUntil(lambda: job_state(window, running) == "running", timeout=WAIT_MS)

    def question() -> QMessageBox | None:
        found = [w for w in QApplication.topLevelWidgets() if w.objectName() == LEAVE_QUESTION_NAME]
        return found[0] if found and found[0].isVisible() else None

    window.open_path(demo_project)  # the open project: nothing to ask, nothing stopped
    assert question() is None and window.controller.active_jobs() == [running]

    window.open_path(other)
    qtbot.waitUntil(lambda: question() is not None, timeout=WAIT_MS)
    assert "1 job(s) of digits-demo" in question().text()
    qtbot.mouseClick(question().button(QMessageBox.StandardButton.Cancel), Qt.MouseButton.LeftButton)
    assert window.controller.session.root == demo_project.resolve()
    assert window.controller.active_jobs() == [running]

    window.open_path(other)
    qtbot.waitUntil(lambda: question() is not None, timeout=WAIT_MS)
    stop = next(b for b in question().buttons() if b.text() == "Stop Jobs and Open")
    with qtbot.waitSignal(window.controller.figures_changed, timeout=WAIT_MS):
        qtbot.mouseClick(stop, Qt.MouseButton.LeftButton)
    assert window.controller.session.root == other.resolve()
    with sqlite3.connect(demo_project / "studio.sqlite") as db:
        assert db.execute("SELECT state FROM jobs WHERE id = ?", (running,)).fetchone() == ("interrupted",)


def test_a_corrupt_model_shows_a_readable_error(qtbot, window, demo_project: Path, tmp_path: Path):
    open_project(qtbot, window, demo_project)
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x07this is not a protobuf model" * 10)
    window.open_model(bad)
    qtbot.waitUntil(lambda: bool(error_dialogs()), timeout=WAIT_MS)
    dialog = error_dialogs()[0]
    text = dialog.text()
    assert text == "broken.onnx is a damaged or truncated ONNX file (it does not parse as ONNX protobuf)"
    assert not dialog.detailedText()  # a file the user chose is not a bug report: no traceback
    assert window.parts.lineage.model.version_count() == 1  # the project is untouched
    dialog.close()


def test_dropping_a_project_folder_opens_it(qtbot, window, demo_project: Path):
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(demo_project))])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        data,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(window.controller.figures_changed, timeout=WAIT_MS):
        window.dropEvent(event)
    assert window.parts.stack.currentWidget() is window.parts.tabs
    assert window.settings.recent("projects")[0] == str(demo_project.resolve())
    from PySide6.QtWidgets import QMenu

    recent = window.menuBar().findChild(QMenu, "recent_projects")
    assert [a.text() for a in recent.actions()] == ["digits-demo"]


def test_window_layout_is_remembered(qtbot, make_window):
    first = make_window()
    first.parts.docks["jobs"].hide()
    first.resize(1200, 800)
    first.close()
    second = make_window()
    assert not second.parts.docks["jobs"].isVisible()
    assert second.size().width() == 1200


def test_a_step_without_its_dataset_is_refused_in_the_window_s_words(qtbot, window, demo_project: Path):
    open_project(qtbot, window, demo_project)
    wait_for_plugins(qtbot, window)
    qtbot.waitUntil(lambda: window.current_version is not None, timeout=WAIT_MS)
    choose_technique(window, "quantize.static")
    picker = window.parts.optimize.dataset
    picker.setCurrentIndex(picker.findData(""))  # "No dataset"
    qtbot.mouseClick(window.parts.optimize.run_button, Qt.MouseButton.LeftButton)

    def dialog() -> QMessageBox | None:
        found = [
            w for w in QApplication.topLevelWidgets() if w.objectName() == ERROR_DIALOG_NAME and w.isVisible()
        ]
        return found[0] if found else None

    qtbot.waitUntil(lambda: dialog() is not None, timeout=WAIT_MS)
    assert dialog().text() == (
        "quantize.static needs a dataset: choose one under Dataset (for example the digits sample)"
    )
    assert "--" not in dialog().text()


def test_a_closed_panel_comes_back_from_the_view_menu(qtbot, window):
    jobs = window.parts.docks["jobs"]
    window.show()
    qtbot.waitUntil(jobs.isVisible)
    jobs.close()  # its title bar's ×
    assert not jobs.isVisible()
    view = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    entry = next(a for a in view.actions() if a.text() == "Jobs")
    assert entry.isCheckable() and not entry.isChecked()
    entry.trigger()
    qtbot.waitUntil(jobs.isVisible)
    assert entry.isChecked()
    assert {a.text() for a in view.actions()} >= {"Lineage", "Optimize", "Recipe", "Jobs"}


@pytest.mark.slow
def test_a_recipe_runs_step_after_step_from_the_editor(qtbot, window, demo_project: Path):
    open_project(qtbot, window, demo_project)
    wait_for_plugins(qtbot, window)
    window.parts.optimize.dataset.set_source("digits")
    editor = window.parts.recipe
    editor.add_step("prune.structured", {"ratio": 0.25, "finetune_epochs": 0})
    editor.add_step("quantize.static", {"calibration_samples": 32})
    assert "cannot run" not in editor.preview.toPlainText()
    with qtbot.waitSignal(window.controller.job_added, timeout=WAIT_MS):
        editor.run_requested.emit(editor.steps())
    tree = window.parts.lineage.model
    qtbot.waitUntil(lambda: tree.version_count() == 3, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.parts.jobs.model.active_count() == 0, timeout=WAIT_MS)
    by_id = {f.id: f for f in window.controller.figures}
    last = max(by_id.values(), key=lambda f: f.id)
    assert last.technique == "quantize.static"
    assert by_id[last.parent_id].technique == "prune.structured"
    assert by_id[last.parent_id].parent_id == 1  # baseline → pruned → int8, each made from the one before
