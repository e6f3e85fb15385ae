"""The Optimize panel's device picker: automatic, the CPU, each GPU, all GPUs as ranks; and a
training step run from the window on this machine's devices.

GPUs are given to the picker as the plain dicts ``hardware.cuda_devices()`` returns: that is the
picker's input, so a machine without a GPU can check how two of them are listed.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import QApplication, QComboBox, QMessageBox
from uitools import UI_MARKS, WAIT_MS, open_project, save_screenshot, wait_for_plugins

from studio.core.techniques import discover
from studio.jobs.events import JobEvent
from studio.store import JobRecord
from studio.ui.models.jobs_model import COLUMNS, JobsTableModel
from studio.ui.pool import ALL_GPUS, placement_request
from studio.ui.settings import StudioSettings
from studio.ui.widgets.errors import ERROR_DIALOG_NAME
from studio.ui.widgets.optimize_panel import OptimizePanel
from studio.ui.widgets.settings_dialog import SettingsDialog

pytestmark = UI_MARKS

H200 = 150_121_996_288  # bytes, as torch reports an H200's memory
GPUS = [
    {"index": 0, "name": "NVIDIA H200", "memory_bytes": H200, "capability": "9.0"},
    {"index": 1, "name": "NVIDIA H200", "memory_bytes": H200, "capability": "9.0"},
]


@pytest.fixture(scope="module")
def entries():
    return discover()


@pytest.fixture
def panel(qtbot, entries) -> OptimizePanel:
    panel = OptimizePanel()
    qtbot.addWidget(panel)
    panel.set_entries(entries)
    panel.set_target("v1 digits")
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def error_dialogs() -> list[QMessageBox]:
    return [
        w for w in QApplication.topLevelWidgets() if w.objectName() == ERROR_DIALOG_NAME and w.isVisible()
    ]


def items(combo: QComboBox) -> list[tuple[str, str]]:
    return [(combo.itemText(i), combo.itemData(i)) for i in range(combo.count())]


def choose(qtbot, combo: QComboBox, value: str) -> None:
    """Open the list and click the item whose data is ``value``, as a user does."""
    combo.showPopup()
    view = combo.view()
    qtbot.waitUntil(view.isVisible)
    index = combo.model().index(combo.findData(value), 0)
    view.scrollTo(index)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(index).center())
    qtbot.waitUntil(lambda: not view.isVisible())


def test_picker_lists_automatic_the_cpu_and_each_gpu(panel):
    picker = panel.device
    assert items(picker) == [("Automatic (GPU for training when there is one)", "auto"), ("CPU", "cpu")]
    assert picker.currentData() == "auto"

    panel.set_devices(GPUS[:1])
    assert items(picker)[2:] == [("cuda:0 — NVIDIA H200, 139.8 GiB", "cuda:0")]  # one GPU: no ranks

    panel.set_devices(GPUS)
    assert items(picker)[2:] == [
        ("cuda:0 — NVIDIA H200, 139.8 GiB", "cuda:0"),
        ("cuda:1 — NVIDIA H200, 139.8 GiB", "cuda:1"),
        ("All GPUs, data-parallel (2 ranks)", ALL_GPUS),
    ]
    assert picker.currentData() == "auto"
    assert picker.view().minimumWidth() > picker.fontMetrics().horizontalAdvance(items(picker)[0][0])

    panel.set_devices([])
    assert [value for _, value in items(picker)] == ["auto", "cpu"]


def test_run_emits_the_device_chosen_in_the_list(qtbot, panel):
    panel.set_devices(GPUS)
    panel.set_technique("prune.structured")
    for value in ("cuda:1", ALL_GPUS, "cpu", "auto"):
        choose(qtbot, panel.device, value)
        assert panel.device.currentData() == value
        with qtbot.waitSignal(panel.run_requested) as run:
            qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
        assert run.args[0] == "prune.structured"
        assert run.args[3] == value  # the item's data, not its text


def test_the_keyboard_moves_through_the_devices(qtbot, panel):
    panel.set_devices(GPUS)
    panel.set_technique("prune.structured")
    panel.device.setFocus()
    qtbot.keyClick(panel.device, Qt.Key.Key_Down)
    assert panel.device.currentData() == "cpu"
    qtbot.keyClick(panel.device, Qt.Key.Key_End)
    assert panel.device.currentData() == ALL_GPUS


def test_ranks_only_for_a_technique_that_trains(qtbot, panel):
    panel.set_devices(GPUS)
    picker, hint = panel.device, panel.device_hint
    ranks = picker.model().item(picker.findData(ALL_GPUS))
    panel.set_technique("prune.structured")
    choose(qtbot, picker, ALL_GPUS)
    assert ranks.isEnabled() and hint.isHidden()

    panel.set_technique("quantize.static")  # does not train: all GPUs is set aside
    assert not ranks.isEnabled()
    assert picker.currentData() == "auto"
    assert hint.isHidden()  # automatic puts it on the CPU anyway
    panel.set_technique("distill")
    assert picker.currentData() == ALL_GPUS  # back for a technique that trains

    panel.set_technique("quantize.static")
    choose(qtbot, picker, "cuda:1")
    assert hint.isVisible()
    assert hint.text() == "This step runs on the CPU: only training steps use the GPU."
    panel.set_technique("prune.structured")
    assert picker.currentData() == "cuda:1" and hint.isHidden()


def test_placement_request_turns_all_gpus_into_ranks():
    assert placement_request(ALL_GPUS, GPUS) == ("auto", ("cuda:0", "cuda:1"))
    assert placement_request("cuda:1", GPUS) == ("cuda:1", ())
    assert placement_request("auto", []) == ("auto", ())
    assert placement_request(ALL_GPUS, []) == ("auto", ())  # a saved choice this machine cannot honour


def test_the_jobs_table_names_the_worker_device():
    now = datetime.now(timezone.utc)
    queued = JobRecord(7, "optimize", "prune.structured", {}, "queued", 1, None, None, "cuda", 0.0, "", None,
                       None, now, None, None)  # fmt: skip
    model = JobsTableModel()
    model.set_records([queued])
    device = model.index(0, COLUMNS.index("Device"))
    assert device.data() == "any GPU"  # waiting for the first free GPU worker
    model.apply(JobEvent("started", 7, device="cuda:1"))
    assert device.data() == "cuda:1"  # the worker that took it


def test_default_device_setting(qtbot, tmp_path: Path, panel):
    settings = StudioSettings(tmp_path / "settings.ini")
    assert settings.default_device == "auto"
    settings._q.setValue("jobs/default_device", "cpu")  # saved by an earlier studio
    assert StudioSettings(settings.path).default_device == "cpu"
    panel.set_devices(GPUS, settings.default_device)
    assert panel.device.currentData() == "cpu"
    settings._q.setValue("jobs/default_device", "a toaster")
    assert settings.default_device == "auto"

    dialog = SettingsDialog(settings, GPUS)
    qtbot.addWidget(dialog)
    assert dialog.device.currentData() == "auto"
    assert [dialog.device.itemData(i) for i in range(dialog.device.count())] == [
        "auto", "cpu", "cuda:0", "cuda:1", ALL_GPUS,
    ]  # fmt: skip
    dialog.device.setCurrentIndex(dialog.device.findData(ALL_GPUS))
    dialog.accept()
    again = StudioSettings(settings.path)
    assert again.default_device == ALL_GPUS
    panel.set_devices(GPUS, again.default_device)
    assert panel.technique.currentData() == "quantize.static"  # does not train: automatic meanwhile
    assert panel.device.currentData() == "auto"
    panel.set_technique("prune.structured")
    assert panel.device.currentData() == ALL_GPUS
    panel.set_devices([], again.default_device)  # a machine without GPUs: automatic
    assert panel.device.currentData() == "auto"


def test_the_picker_fits_the_panel_at_both_window_sizes(qtbot, window):
    wait_for_plugins(qtbot, window)
    qtbot.waitUntil(lambda: bool(window.parts.devices_label.toolTip()), timeout=WAIT_MS)  # found
    window._on_devices((GPUS, "a CPU"))
    assert window.parts.devices_label.text() == "Devices: cpu, cuda:0, cuda:1"
    panel = window.parts.optimize
    panel.set_technique("quantize.static")
    choose(qtbot, panel.device, "cuda:1")
    for width, height in ((1600, 1000), (1024, 700)):
        window.resize(width, height)
        qtbot.waitUntil(lambda w=width: window.width() == w)
        qtbot.wait(50)
        for widget in (panel.device, panel.device_hint, panel.run_button):
            assert widget.isVisible()
            box = QRect(widget.mapTo(panel, QPoint(0, 0)), widget.size())
            assert panel.rect().contains(box), f"{widget.objectName()} clipped at {width}×{height}"
        assert panel.device.width() >= panel.device.minimumSizeHint().width()
        save_screenshot(panel, f"device-picker-{width}x{height}")
        save_screenshot(window, f"device-picker-window-{width}x{height}")
    panel.set_technique("prune.structured")
    panel.device.showPopup()
    qtbot.waitUntil(panel.device.view().isVisible)
    save_screenshot(panel.device.view().window(), "device-picker-list")
    panel.device.hidePopup()


def test_the_chosen_gpus_reach_the_engine(qtbot, window, demo_project: Path):
    """Two GPUs listed on a machine whose workers are all CPUs: the engine refuses the GPU the
    window asked for, in one sentence, which shows what reached it."""
    open_project(qtbot, window, demo_project)
    wait_for_plugins(qtbot, window)
    qtbot.waitUntil(lambda: bool(window.parts.devices_label.toolTip()), timeout=WAIT_MS)
    window._on_devices((GPUS, "a CPU"))
    panel = window.parts.optimize
    panel.set_technique("prune.structured")
    panel.dataset.set_source("digits")
    for value, asked in (("cuda:1", "cuda:1"), (ALL_GPUS, "cuda:0")):  # ranks: the first rank's worker
        choose(qtbot, panel.device, value)
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: bool(error_dialogs()), timeout=WAIT_MS)
        dialog = error_dialogs()[0]
        assert dialog.text() == f"No worker can run a job on {asked}; the workers run on cpu"
        dialog.close()
        qtbot.waitUntil(lambda: not error_dialogs())
    jobs = window.controller.session.project.store.list_jobs()
    assert [r.kind for r in jobs] == ["measure"]  # the demo's own: nothing was queued


def test_another_technique_s_form_starts_at_its_top(qtbot, panel):
    panel.resize(380, 420)  # short enough that a form scrolls
    panel.set_technique("prune.structured")
    bar = panel.parameters.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    bar.setValue(bar.maximum())  # the user scrolled down to the last parameter
    panel.technique.setFocus()
    qtbot.keyClick(panel.technique, Qt.Key.Key_Down)  # the next technique, from the keyboard
    assert panel.technique.currentData() != "prune.structured"
    assert bar.value() == 0
