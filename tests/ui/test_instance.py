"""The window as a desktop application: one studio per data folder (a file opened from the file
manager goes to the running window) and a clean exit on SIGTERM, workers and all."""

from __future__ import annotations

import socket
import sqlite3
import sys
from pathlib import Path

import pytest
from running_app import group_alive, job_workers, kill_group, launch, stop, wait_until
from uitools import UI_MARKS, WAIT_MS

from studio.core.resources import resource
from studio.ui.instance import InstanceServer, hand_over, server_name

pytestmark = [*UI_MARKS, pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")]
STUDIO = [sys.executable, "-m", "studio"]


def test_a_second_launch_hands_its_path_to_the_running_studio(qtbot, tmp_path: Path):
    data = tmp_path / "data"
    running = InstanceServer(server_name(data))
    assert running.listening
    model = resource("demo", "digits_cnn.onnx")
    with qtbot.waitSignal(running.request, timeout=WAIT_MS) as received:
        second = launch([*STUDIO, "digits_cnn.onnx"], data_dir=data, cwd=model.parent)
    out, err = second.communicate(timeout=60)
    running.close()
    assert second.returncode == 0, err
    assert received.args == [{"path": str(model)}], "the relative path was resolved where it was typed"


def test_a_studio_with_another_data_folder_is_another_studio(qtbot, tmp_path: Path):
    running = InstanceServer(server_name(tmp_path / "one"))
    try:
        assert server_name(tmp_path / "two") != running.name
        assert not hand_over(server_name(tmp_path / "two"), {}, timeout_ms=300)
    finally:
        running.close()


def test_a_stale_socket_from_a_crashed_studio_does_not_block_the_next(qtbot, tmp_path: Path):
    name = server_name(tmp_path / "data")
    first = InstanceServer(name)
    socket_file = Path(first._server.fullServerName())
    first.close()
    leftover = socket.socket(socket.AF_UNIX)  # bound and never unlinked: what SIGKILL leaves
    leftover.bind(str(socket_file))
    leftover.close()
    assert socket_file.exists()
    assert not hand_over(name, {}, timeout_ms=300)
    fresh = InstanceServer(name)
    try:
        assert fresh.listening
    finally:
        fresh.close()


@pytest.mark.slow
def test_the_window_exits_cleanly_on_sigterm_with_its_workers(demo_project: Path, tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    window = launch([*STUDIO, str(demo_project)], data_dir=data, cwd=tmp_path)
    try:
        wait_until(lambda: job_workers(window.pid), 120, "the project's job workers")
        code, err = stop(window)
        assert code == 0, err
        assert "Traceback" not in err
        wait_until(lambda: not group_alive(window.pid), 30, "every process the studio started to end")
    finally:
        kill_group(window)
    assert "geometry" in (data / "settings.ini").read_text(), "the window's layout was saved on the way out"
    with sqlite3.connect(demo_project / "studio.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_the_application_shows_its_icon(qapp):
    from studio.ui.app import application_icon

    icon = application_icon()
    image = icon.pixmap(64).toImage()
    assert not icon.isNull() and image.width() == 64
    assert image.pixelColor(32, 32).alpha() > 0, "the icon drew nothing"
