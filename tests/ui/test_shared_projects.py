"""Shared `.studio` projects in the window: opened from a path (as a file manager does), saved from
the open project, and a damaged file refused with one sentence and nothing written."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox
from uitools import UI_MARKS, WAIT_MS, open_project, save_screenshot

from studio.bundle import pack_project
from studio.ui.opening import TRUST_QUESTION_NAME, UNPACK_QUESTION_NAME
from studio.ui.widgets.errors import ERROR_DIALOG_NAME

pytestmark = UI_MARKS


def _visible(name: str) -> QMessageBox | None:
    found = [w for w in QApplication.topLevelWidgets() if w.objectName() == name and w.isVisible()]
    return found[0] if found else None


def _button(box: QMessageBox, text: str):
    return next(b for b in box.buttons() if b.text() == text)


def test_a_shared_project_opens_in_a_new_folder_beside_it_and_again_without_asking(
    qtbot, make_window, demo_project: Path, tmp_path: Path
):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    bundle = pack_project(demo_project, inbox / "digits.studio").path
    window = make_window()
    window.open_path(bundle)
    qtbot.waitUntil(lambda: _visible(UNPACK_QUESTION_NAME) is not None, timeout=WAIT_MS)
    question = _visible(UNPACK_QUESTION_NAME)
    assert str(inbox / "digits") in question.informativeText()
    assert not (inbox / "digits").exists(), "nothing is written before the user answers"
    save_screenshot(question, "open-shared-project")

    with qtbot.waitSignal(window.controller.figures_changed, timeout=WAIT_MS):
        qtbot.mouseClick(_button(question, "Unpack and Open"), Qt.MouseButton.LeftButton)
    assert window.controller.session.root == (inbox / "digits").resolve()
    assert window.parts.lineage.model.version_count() == 1
    window.close()

    again = make_window()
    with qtbot.waitSignal(again.controller.figures_changed, timeout=WAIT_MS):
        again.open_path(bundle)
    assert _visible(UNPACK_QUESTION_NAME) is None
    assert again.controller.session.root == (inbox / "digits").resolve()
    assert sorted(p.name for p in inbox.iterdir()) == ["digits", "digits.studio"]


def test_cancelling_the_question_writes_nothing(qtbot, window, demo_project: Path, tmp_path: Path):
    bundle = pack_project(demo_project, tmp_path / "shared.studio").path
    window.open_path(bundle)
    qtbot.waitUntil(lambda: _visible(UNPACK_QUESTION_NAME) is not None, timeout=WAIT_MS)
    qtbot.mouseClick(
        _visible(UNPACK_QUESTION_NAME).button(QMessageBox.StandardButton.Cancel), Qt.MouseButton.LeftButton
    )
    qtbot.waitUntil(lambda: _visible(UNPACK_QUESTION_NAME) is None, timeout=WAIT_MS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits-demo", "shared.studio"]
    assert window.controller.session is None


def test_a_damaged_shared_project_is_one_sentence_and_leaves_nothing(qtbot, window, tmp_path: Path):
    bundle = tmp_path / "broken.studio"
    bundle.write_bytes(b"this was never a zip file")
    window.open_path(bundle)
    qtbot.waitUntil(lambda: _visible(UNPACK_QUESTION_NAME) is not None, timeout=WAIT_MS)
    qtbot.mouseClick(_button(_visible(UNPACK_QUESTION_NAME), "Unpack and Open"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _visible(ERROR_DIALOG_NAME) is not None, timeout=WAIT_MS)
    dialog = _visible(ERROR_DIALOG_NAME)
    assert "broken.studio is not a studio bundle" in dialog.text()
    assert not dialog.detailedText(), "a damaged file is the user's problem to know about, not a bug report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.studio"]
    dialog.close()


def test_the_open_project_is_saved_as_one_file(qtbot, window, demo_project: Path, tmp_path: Path):
    open_project(qtbot, window, demo_project)
    out = tmp_path / "to-send.studio"
    with qtbot.waitSignal(window.controller.packed, timeout=WAIT_MS) as packed:
        window.controller.pack_project(out)
    assert packed.args[0].path == out and packed.args[0].versions == 1
    assert out.is_file() and out.stat().st_size == packed.args[0].size_bytes
    assert "to-send.studio" in window.statusBar().currentMessage()
    assert window.actions["share_project"].isEnabled()


def test_code_from_a_shared_project_is_shown_once_trusted_here(
    qtbot, window, demo_project: Path, tmp_path: Path, _private_data_dir: Path
):
    bundle = pack_project(demo_project, tmp_path / "from-a-colleague.studio").path
    (_private_data_dir / "trust.json").unlink()  # this machine has never seen the architecture file
    window.open_path(bundle)
    qtbot.waitUntil(lambda: _visible(UNPACK_QUESTION_NAME) is not None, timeout=WAIT_MS)
    qtbot.mouseClick(_button(_visible(UNPACK_QUESTION_NAME), "Unpack and Open"), Qt.MouseButton.LeftButton)

    graph = window.parts.graph
    qtbot.waitUntil(lambda: graph.message_button.isVisible(), timeout=WAIT_MS)
    assert "digits_cnn.py is Python code" in graph.message_text()
    assert "--trust" not in graph.message_text(), "the window does not give command-line advice"
    assert window.parts.layers.model.rowCount() == 0
    save_screenshot(window, "untrusted-shared-version")

    qtbot.mouseClick(graph.message_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _visible(TRUST_QUESTION_NAME) is not None, timeout=WAIT_MS)
    question = _visible(TRUST_QUESTION_NAME)
    assert "digits_cnn.py" in question.text() and "--trust" not in question.text()
    qtbot.mouseClick(question.button(QMessageBox.StandardButton.Yes), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.parts.layers.model.rowCount() > 10, timeout=WAIT_MS)
    assert graph.path is not None and not graph.message_button.isVisible()


def test_a_torchscript_version_from_a_shared_project_is_drawn_only_once_trusted_here(
    qtbot, window, tmp_path: Path, _private_data_dir: Path
):
    import torch

    from studio.project import Project

    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten()).eval()
    scripted = tmp_path / "colleague.ts.pt"
    torch.jit.save(torch.jit.trace(network, torch.randn(1, 1, 8, 8)), str(scripted))
    with Project.create(tmp_path / "colleague") as project:  # the colleague trusted their own file
        project.import_model(scripted, name="scripted", trust=True, input_shapes=[(1, 1, 8, 8)])
    bundle = pack_project(tmp_path / "colleague", tmp_path / "from-a-colleague.studio").path
    (_private_data_dir / "trust.json").unlink()  # this machine has never seen the archive

    window.open_path(bundle)
    qtbot.waitUntil(lambda: _visible(UNPACK_QUESTION_NAME) is not None, timeout=WAIT_MS)
    assert "TorchScript" in _visible(UNPACK_QUESTION_NAME).informativeText()
    qtbot.mouseClick(_button(_visible(UNPACK_QUESTION_NAME), "Unpack and Open"), Qt.MouseButton.LeftButton)

    graph = window.parts.graph
    qtbot.waitUntil(lambda: graph.message_button.isVisible(), timeout=WAIT_MS)
    assert "colleague.ts.pt is a TorchScript archive" in graph.message_text()
    assert window.parts.layers.model.rowCount() == 0

    qtbot.mouseClick(graph.message_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _visible(TRUST_QUESTION_NAME) is not None, timeout=WAIT_MS)
    qtbot.mouseClick(
        _visible(TRUST_QUESTION_NAME).button(QMessageBox.StandardButton.Yes), Qt.MouseButton.LeftButton
    )
    qtbot.waitUntil(lambda: window.parts.layers.model.rowCount() >= 2, timeout=WAIT_MS)
    assert graph.path is not None and not graph.message_button.isVisible()
