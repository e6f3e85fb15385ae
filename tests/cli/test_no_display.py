"""`studio` where there is no display: one sentence and exit code 2, not Qt's abort (SIGABRT)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY is X11's and Wayland's")


@pytest.mark.parametrize("args", [[], ["demo", "--project", "demo"], ["model.onnx"]])
def test_without_a_display_the_window_is_refused_in_one_sentence(args: list[str], tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"")  # a file to open, so that the window is what is asked for
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run(
        [sys.executable, "-m", "studio", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "studio: error: there is no display to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set); "
        "the commands work without one: see `studio --help`, or try `studio demo --headless`"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # no project made
