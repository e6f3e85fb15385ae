"""Jobs from the command line: every step and measurement is a recorded job; cancel from another process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio.core.resources import resource

FAULTY = Path(__file__).parents[1] / "plugins" / "faulty"


def test_bench_runs_as_a_recorded_job_with_a_log(studio_cli, tmp_path: Path) -> None:
    project = tmp_path / "p"
    bench = studio_cli(
        "bench",
        resource("demo", "digits_cnn.onnx"),
        "--project",
        project,
        "--min-runs",
        "5",
        "--min-seconds",
        "0.05",
        "--json",
    )
    assert bench.returncode == 0, bench.stderr
    listed = studio_cli("jobs", "--project", project, "--json").json()["jobs"]
    assert [(j["kind"], j["state"]) for j in listed] == [("measure", "succeeded")]
    assert Path(listed[0]["log_path"]).is_file()
    text = studio_cli("jobs", "--project", project)
    row = next(line for line in text.stdout.splitlines() if "measure" in line)
    assert "succeeded" in row and str(listed[0]["id"]) in row.split()


def test_cancel_from_another_process(studio_cli, tmp_path: Path) -> None:
    project = tmp_path / "p"
    assert studio_cli("import", resource("demo", "digits_cnn.onnx"), "--project", project).returncode == 0
    marker = tmp_path / "cancel-seen.txt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FAULTY), os.environ.get("PYTHONPATH", "")])}
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "studio",
            "optimize",
            "1",
            "faulty.crash_midway",
            "--set",
            "how=hang",
            "--set",
            f"cancel_marker={marker}",
            "--project",
            str(project),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            jobs = studio_cli("jobs", "--project", project, "--state", "running", "--json").json()["jobs"]
            if jobs and jobs[0]["progress"] >= 0.5:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the step never reached its half-way point")
        assert studio_cli("jobs", "cancel", str(jobs[0]["id"]), "--project", project).returncode == 0
        out, err = runner.communicate(timeout=60)
    finally:
        runner.kill()
    # the cancel written to the database reached the technique at a progress report, so the step
    # stopped there instead of being terminated after the grace period
    assert marker.read_text() == "cancelled at a progress report"
    assert runner.returncode == 2 and "cancelled" in err
    final = studio_cli("jobs", "--project", project, "--json").json()["jobs"]
    assert final[0]["state"] == "cancelled"
    again = studio_cli("jobs", "cancel", str(final[0]["id"]), "--project", project)
    assert again.returncode == 2 and "already ended" in again.stderr


def test_unknown_executor_is_refused(studio_cli, tmp_path: Path) -> None:
    result = studio_cli(
        "bench", resource("demo", "digits_cnn.onnx"), "--project", tmp_path / "p", "--executor", "slurm"
    )
    assert result.returncode == 2 and "unknown executor 'slurm'" in result.stderr
    assert not (tmp_path / "p").exists()


@pytest.mark.slow
def test_bench_on_a_local_ray(studio_cli, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed")
    result = studio_cli(
        "bench",
        resource("demo", "digits_cnn.onnx"),
        "--project",
        tmp_path / "p",
        "--executor",
        "ray",
        "--min-runs",
        "5",
        "--min-seconds",
        "0.05",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    assert result.json()["latency_ms"]["p50"] > 0 and result.json()["accuracy"] is None
    listed = studio_cli("jobs", "--project", tmp_path / "p", "--json").json()["jobs"]
    assert [(j["kind"], j["state"]) for j in listed] == [("measure", "succeeded")]
