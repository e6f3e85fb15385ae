"""Helpers shared by the window tests: waiting on signals, saving screenshots, Qt log rules."""

from __future__ import annotations

from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
WAIT_MS = 120_000  # generous: a slow, busy machine makes tests slower, not flaky

# Messages the offscreen platform and the web engine print on a machine without a GPU or a
# D-Bus; anything else Qt warns about fails the test.
QT_NOISE = (
    r"This plugin does not support .*",
    r"QRhiGles2: .*",
    r"Failed to create RHI .*",
    r"QVulkanInstance: .*",
    r"GBM is not supported .*",
    r"Sandboxing disabled by user\.",
    r".*Failed to connect to the bus.*",
    r"GPUInfo not initialized.*",
)
UI_MARKS = [pytest.mark.ui, pytest.mark.qt_log_level_fail("WARNING"), pytest.mark.qt_log_ignore(*QT_NOISE)]


def open_project(qtbot, window, path: Path) -> None:
    with qtbot.waitSignal(window.controller.figures_changed, timeout=WAIT_MS):
        window.open_project(path)


def wait_for_plugins(qtbot, window) -> None:
    """Until the technique list is filled: the plugins load off the UI thread."""
    qtbot.waitUntil(lambda: window.parts.optimize.technique.count() > 0, timeout=WAIT_MS)


def save_screenshot(widget, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    assert widget.grab().save(str(path)), f"could not save {path}"
    return path


def submit(qtbot, window, version_id: int, technique: str, params: dict, **options) -> int:
    """Queue a step through the window's controller and wait until it is in the jobs table."""
    with qtbot.waitSignal(window.controller.job_added, timeout=WAIT_MS) as added:
        window.controller.submit_optimize(version_id, technique, params, **options)
    return added.args[0].id
