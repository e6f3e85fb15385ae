"""Start the studio's window as a separate process and watch it (Linux /proc), for the tests that
check how it starts, hands requests over and exits: `python -m studio` and the built application."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def launch(command: list[str], *, data_dir: Path, cwd: Path) -> subprocess.Popen:
    """The window in its own session (process group), so that everything it starts can be found."""
    env = {**os.environ, "STUDIO_DATA_DIR": str(data_dir), "QT_QPA_PLATFORM": "offscreen"}
    env.pop("STUDIO_RESOURCES", None)
    return subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        parent = queue.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            queue += children
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def job_workers(pid: int) -> list[int]:
    """Processes started for jobs (multiprocessing's spawn), not the web engine's."""
    return [c for c in descendants(pid) if "multiprocessing" in command_line(c)]


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(process: subprocess.Popen, timeout: float = 60) -> tuple[int, str]:
    """SIGTERM, as a desktop session does on logout; the exit code and what it wrote to stderr."""
    process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        _, err = process.communicate()
        raise AssertionError(f"the studio did not exit within {timeout:.0f} s of SIGTERM:\n{err}") from None
    return process.returncode, err


def kill_group(process: subprocess.Popen) -> None:
    """Leave nothing running, whatever the test found."""
    if group_alive(process.pid):
        os.killpg(process.pid, signal.SIGKILL)
    if process.poll() is None:
        process.wait(10)
