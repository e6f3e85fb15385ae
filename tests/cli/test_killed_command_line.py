"""A command line killed mid-job: the next command says so, and a second one's live job is untouched.

Two real `studio optimize` processes work on one project at once. The first is killed with
SIGKILL, with its workers (the whole process group, as when the machine loses power) or without
them (its workers must not keep its job alive: they never record anything). The next `studio
jobs` reports its job ``interrupted`` and the second job still ``running``; the database is sound
and the versions made before are all there. The step used hangs until it is cancelled, so
nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from studio.core.resources import resource

FAULTY = Path(__file__).parents[1] / "plugins" / "faulty"
WAIT_S = 240.0  # generous: a loaded two-core machine starts each command in seconds, not milliseconds

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="process groups and SIGKILL")


@pytest.fixture
def project(studio_cli, tmp_path: Path) -> Path:
    """The demo model imported, and one step that succeeded: results that must survive the kill."""
    folder = tmp_path / "p"
    imported = studio_cli("import", resource("demo", "digits_cnn.onnx"), "--project", folder)
    assert imported.returncode == 0, imported.stderr
    step = studio_cli("optimize", "v1", "quantize.dynamic", "--no-measure", "--project", folder)
    assert step.returncode == 0, step.stderr
    return folder


@pytest.fixture
def start_optimize(project: Path, tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen]]:
    """Start `studio optimize` with a step that hangs until cancelled, each in its own process group."""
    started: list[subprocess.Popen] = []
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(FAULTY), os.environ.get("PYTHONPATH")) if p),
        "PYTHONWARNINGS": "ignore",
    }

    def start() -> subprocess.Popen:
        with open(tmp_path / f"optimize-{len(started)}.err", "w") as errors:  # the child keeps its own copy
            process = subprocess.Popen(
                [sys.executable, "-m", "studio", "optimize", "v1", "faulty.crash_midway", "--set", "how=hang"]
                + ["--project", str(project)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                env=env,
                cwd=tmp_path,
                start_new_session=True,
            )
        started.append(process)
        return process

    yield start
    for process in started:  # whatever is left of each group, workers included
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.mark.parametrize("workers_die_too", [True, False], ids=["group-killed", "only-the-command-killed"])
def test_a_killed_command_line_leaves_an_interrupted_job_and_spares_the_other(
    studio_cli, project: Path, start_optimize, workers_die_too: bool
) -> None:
    versions_before = studio_cli("versions", "--project", project, "--json").json()["versions"]
    jobs_before = studio_cli("jobs", "--project", project, "--json").json()["jobs"]

    first = start_optimize()
    first_job = _wait_for_running_job(studio_cli, project, first)
    second = start_optimize()
    second_job = _wait_for_running_job(studio_cli, project, second)
    assert _job(studio_cli, project, first_job)["state"] == "running"  # opening the project spared it

    if workers_die_too:
        os.killpg(first.pid, signal.SIGKILL)
    else:
        first.send_signal(signal.SIGKILL)
    assert first.wait(WAIT_S) == -signal.SIGKILL

    jobs = {job["id"]: job for job in studio_cli("jobs", "--project", project, "--json").json()["jobs"]}
    assert jobs[first_job]["state"] == "interrupted"
    assert jobs[first_job]["message"] == "the studio that ran this job stopped"
    assert jobs[second_job]["state"] == "running"
    assert [jobs[job["id"]] for job in jobs_before] == jobs_before  # earlier jobs as they were
    assert _integrity(project / "studio.sqlite") == "ok"
    assert studio_cli("versions", "--project", project, "--json").json()["versions"] == versions_before

    cancelled = studio_cli("jobs", "cancel", str(second_job), "--project", project)
    assert cancelled.returncode == 0, cancelled.stderr
    assert second.wait(WAIT_S) == 2  # the second command line stopped its own job, as asked
    ended = _job(studio_cli, project, second_job)
    assert ended["state"] == "cancelled"
    assert _job(studio_cli, project, first_job)["state"] == "interrupted"


def _wait_for_running_job(studio_cli, project: Path, process: subprocess.Popen) -> int:
    """The id of the job ``process`` owns, once `studio jobs` shows it running."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"`studio optimize` ended early with {process.returncode}"
        listed = studio_cli("jobs", "--project", project, "--state", "running", "--json")
        assert listed.returncode == 0, listed.stderr
        owned = [job["id"] for job in listed.json()["jobs"] if job["owner_pid"] == process.pid]
        if owned:
            return owned[0]
        time.sleep(0.2)
    pytest.fail(f"the job of `studio optimize` (pid {process.pid}) never showed as running")


def _job(studio_cli, project: Path, job_id: int) -> dict:
    listed = studio_cli("jobs", "--project", project, "--json")
    assert listed.returncode == 0, listed.stderr
    return next(job for job in listed.json()["jobs"] if job["id"] == job_id)


def _integrity(database: Path) -> str:
    connection = sqlite3.connect(database)
    try:
        return "\n".join(row[0] for row in connection.execute("PRAGMA integrity_check"))
    finally:
        connection.close()
