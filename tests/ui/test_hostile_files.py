"""Crafted files opened in the window, as a user would open a stranger's file: each is refused in
one readable sentence, nothing is written, and none of the file's code runs.

The files are the ones the command-line tests use (``hostile_files``), so every hole is tried
from both places a user could open it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hostile_files import (
    HOSTILE,
    can_build_native_code,
    program_with_native_code,
    read_members,
    torchscript_that_writes,
)
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox
from uitools import UI_MARKS, WAIT_MS, save_screenshot

from studio.bundle import pack_project
from studio.ui.opening import TRUST_QUESTION_NAME, UNPACK_QUESTION_NAME
from studio.ui.widgets.errors import ERROR_DIALOG_NAME

pytestmark = UI_MARKS

# One bundle for each kind of hole: a stored path, the database's own SQL, sizes and counts an
# attacker chooses, names a file system would fold together, a damaged or foreign file. Those
# left out differ only in the exact check, which the bundle tests try one by one.
IN_THE_WINDOW = (
    "path traversal",
    "symlink member",
    "zip bomb of small members",
    "a hundred thousand members",
    "a trigger in the database",
    "a view in the database",
    "weights outside the project",
    "tampered database",
    "names differing in composition",
    "a name over 255 bytes",
    "not a project file",
)


def _visible(name: str) -> QMessageBox | None:
    found = [w for w in QApplication.topLevelWidgets() if w.objectName() == name and w.isVisible()]
    return found[0] if found else None


def _button(box: QMessageBox, text: str):
    return next(b for b in box.buttons() if b.text() == text)


def test_every_kind_of_hostile_bundle_is_one_sentence_and_leaves_nothing(
    qtbot, window, demo_project: Path, tmp_path: Path
):
    members = read_members(pack_project(demo_project, tmp_path / "demo.studio").path)
    inbox = tmp_path / "inbox"
    for case in IN_THE_WINDOW:
        make, message = HOSTILE[case]
        folder = inbox / case.replace(" ", "-")
        folder.mkdir(parents=True)
        hostile = make(members, folder / "from-a-stranger.studio")

        window.open_path(hostile)
        qtbot.waitUntil(lambda: _visible(UNPACK_QUESTION_NAME) is not None, timeout=WAIT_MS)
        qtbot.mouseClick(
            _button(_visible(UNPACK_QUESTION_NAME), "Unpack and Open"), Qt.MouseButton.LeftButton
        )
        qtbot.waitUntil(lambda: _visible(ERROR_DIALOG_NAME) is not None, timeout=WAIT_MS)
        dialog = _visible(ERROR_DIALOG_NAME)
        assert re.search(message, dialog.text(), re.IGNORECASE), f"{case}: {dialog.text()!r}"
        assert "\n" not in dialog.text().strip(), f"{case}: not one sentence: {dialog.text()!r}"
        assert not dialog.detailedText(), f"{case}: a crafted file is not a bug report"
        if case == "a trigger in the database":
            save_screenshot(dialog, "hostile-bundle-refused")
        dialog.close()
        qtbot.waitUntil(lambda: _visible(ERROR_DIALOG_NAME) is None, timeout=WAIT_MS)

        assert [p.name for p in folder.iterdir()] == ["from-a-stranger.studio"], case
        assert not (inbox / "escaped.txt").exists() and not (folder.parent / "escaped.txt").exists()
        assert window.controller.session is None, f"{case}: a project was opened"


def _no_model_was_imported(window) -> bool:
    return window.parts.lineage.model.version_count() == 0


def _open_untrusted_model_and_refuse(qtbot, window, project: Path, model: Path) -> QMessageBox:
    window.open_project(project, create=True)
    qtbot.waitUntil(lambda: window.controller.session is not None, timeout=WAIT_MS)
    window.open_model(model)
    qtbot.waitUntil(lambda: _visible(TRUST_QUESTION_NAME) is not None, timeout=WAIT_MS)
    question = _visible(TRUST_QUESTION_NAME)
    text = question.text() + " " + question.informativeText()
    assert model.name in text and "--trust" not in text
    qtbot.mouseClick(question.button(QMessageBox.StandardButton.No), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _visible(TRUST_QUESTION_NAME) is None, timeout=WAIT_MS)
    return question


def test_a_torchscript_archive_runs_nothing_until_the_user_trusts_it(
    qtbot, window, tmp_path: Path, _private_data_dir: Path
):
    marker = tmp_path / "archive-code-ran"
    archive = torchscript_that_writes(tmp_path / "downloaded.pt", marker)

    _open_untrusted_model_and_refuse(qtbot, window, tmp_path / "project", archive)
    qtbot.wait(500)  # long enough for a load that should not happen to have happened
    assert _no_model_was_imported(window)
    assert not marker.exists(), "the archive's own code ran before the user trusted it"
    assert not list((tmp_path / "project" / "artifacts").glob("*/*"))


@pytest.mark.skipif(not can_build_native_code(), reason="no C compiler to build the native library with")
def test_a_pt2_with_native_code_runs_nothing_until_the_user_trusts_it(
    qtbot, window, tmp_path: Path, _private_data_dir: Path
):
    marker = tmp_path / "native-code-ran"
    program = program_with_native_code(tmp_path / "downloaded.pt2", marker)

    _open_untrusted_model_and_refuse(qtbot, window, tmp_path / "project", program)
    qtbot.wait(500)
    assert _no_model_was_imported(window)
    assert not marker.exists(), "the archive's native library was loaded before the user trusted it"
    assert not list((tmp_path / "project" / "artifacts").glob("*/*"))
