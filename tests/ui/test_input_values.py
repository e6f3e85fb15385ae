"""A model with a sample-rate input opened in the window: the window asks for the value the
command line takes as ``--input-spec``, imports the model with it, and says what is fed."""

from __future__ import annotations

from pathlib import Path

from model_corpus import streaming_state_and_rate
from PySide6.QtWidgets import QApplication, QInputDialog
from uitools import UI_MARKS, WAIT_MS, save_screenshot

from studio.core.input_roles import roles_of
from studio.ui.opening import INPUT_VALUE_QUESTION_NAME
from studio.ui.widgets.errors import ERROR_DIALOG_NAME

pytestmark = UI_MARKS


def _visible(name: str):
    found = [w for w in QApplication.topLevelWidgets() if w.objectName() == name and w.isVisible()]
    return found[0] if found else None


def _question(qtbot) -> QInputDialog:
    qtbot.waitUntil(lambda: _visible(INPUT_VALUE_QUESTION_NAME) is not None, timeout=WAIT_MS)
    return _visible(INPUT_VALUE_QUESTION_NAME)


def test_the_window_asks_for_the_sample_rate_and_imports_with_it(
    qtbot, window, tmp_path: Path, _private_data_dir: Path
):
    made = streaming_state_and_rate(tmp_path)  # the corpus's: only this one, the window pass builds no other
    window.open_project(tmp_path / "project", create=True)
    qtbot.waitUntil(lambda: window.controller.session is not None, timeout=WAIT_MS)
    window.open_model(made.model)

    question = _question(qtbot)
    assert "'sr'" in question.labelText() and "streaming.onnx" in question.labelText()
    question.setTextValue("fast")  # not a number: one sentence, and the model is not imported
    question.accept()
    qtbot.waitUntil(lambda: _visible(ERROR_DIALOG_NAME) is not None, timeout=WAIT_MS)
    assert "must be batch, state or a number" in _visible(ERROR_DIALOG_NAME).text()
    _visible(ERROR_DIALOG_NAME).close()
    assert window.parts.lineage.model.version_count() == 0

    window.open_model(made.model)
    question = _question(qtbot)
    question.setTextValue("16000")
    question.accept()
    qtbot.waitUntil(lambda: window.parts.lineage.model.version_count() == 1, timeout=WAIT_MS)
    (version,) = window.controller.session.project.store.list_versions()
    assert roles_of(version.inputs) == {"input": "batch", "state": "state", "sr": "16000"}
    summary = window.parts.layers.summary
    qtbot.waitUntil(lambda: "sr = 16000" in summary.text(), timeout=WAIT_MS)
    assert "state = zeros (state)" in summary.text()
    window.resize(1024, 700)
    qtbot.wait(200)  # let the layout give the summary its second line
    save_screenshot(window, "input-values")
