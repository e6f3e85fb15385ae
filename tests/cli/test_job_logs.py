"""Job logs and progress from the command line: a real step's log, following a running job, the
progress lines on stderr, and the reporter behind them (fed its own clock, so nothing waits)."""

from __future__ import annotations

import io
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from studio.cli_progress import ProgressReporter
from studio.core.resources import resource

DEMO_ONNX = resource("demo", "digits_cnn.onnx")
DEMO_ARCH = resource("demo", "digits_cnn.py")
DEMO_WEIGHTS = resource("demo", "digits_cnn.safetensors")
FAULTY = Path(__file__).parents[1] / "plugins" / "faulty"
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d "
WAIT_S = 120.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# -- the reporter --------------------------------------------------------------------------------------


def test_without_a_terminal_a_line_comes_when_the_message_changes_or_every_few_seconds() -> None:
    out, clock = io.StringIO(), Clock()
    report = ProgressReporter(out, interactive=False, clock=clock)
    report(0.0, "starting")
    for i in range(1, 40):  # a job reporting ten times a second under one message
        clock.now = i / 10
        report(i / 1000, "epoch 1/10")
    clock.now = 4.0
    report(0.02, "epoch 1/10: loss 0.41 acc 0.93")  # changed, and a second has passed: shown
    clock.now = 4.5
    report(0.025, "epoch 2/10")  # changed, but within the second: kept for later
    clock.now = 9.6
    report(0.05, "epoch 2/10")  # five seconds without a line: shown
    clock.now = 10.0
    report(1.0, "done")
    report.finish()
    assert out.getvalue().splitlines() == [
        "[  0%] starting — ETA unknown",
        "[  1%] epoch 1/10 — ETA unknown",
        "[  2%] epoch 1/10: loss 0.41 acc 0.93 — ETA unknown",
        "[  5%] epoch 2/10 — ETA 3 min 14 s",  # 95 % at the last 4.8 s's rate
        "[100%] done",
    ]


def test_on_a_terminal_one_line_redraws_itself_within_the_width() -> None:
    out, clock = io.StringIO(), Clock()
    report = ProgressReporter(out, interactive=True, clock=clock, width=80)
    for step in range(0, 21):
        clock.now = float(step)
        report(step / 40, f"calibrating batch {step} of a rather long description \x1b[31mred")
    report.finish()
    text = out.getvalue()
    frames = text.removesuffix("\n").split("\r")[1:]
    assert len(frames) == 21 and text.endswith("\n") and "\n" not in text[:-1]
    assert all(len(frame.rstrip()) <= 79 for frame in frames)
    assert frames[-1].startswith("[############............]  50% calibrating batch 20")
    assert frames[-1].rstrip().endswith("— ETA 20 s")
    assert "\x1b" not in text  # a message cannot drive the terminal


def test_finish_shows_a_last_state_that_came_too_soon_after_the_one_before() -> None:
    out, clock = io.StringIO(), Clock()
    report = ProgressReporter(out, interactive=False, clock=clock)
    report(0.5, "half way")
    clock.now = 0.2
    report(0.9, "saving")
    assert out.getvalue().count("\n") == 1
    report.finish()
    assert out.getvalue().splitlines()[-1] == "[ 90%] saving — ETA unknown"


# -- a real step, run and read through the command line -------------------------------------------------


def test_a_pruning_step_leaves_a_log_with_its_progress_notes_and_result(studio_cli, tmp_path: Path) -> None:
    project = tmp_path / "p"
    run = studio_cli(
        "optimize",
        DEMO_ARCH,
        "prune.magnitude",
        "--weights",
        DEMO_WEIGHTS,
        "--trust",
        "--data",
        "digits",
        "--project",
        project,
        "--json",
    )
    assert run.returncode == 0, run.stderr
    outcome = json.loads(run.stdout)  # stdout is the JSON alone: progress went to stderr
    progress = [line for line in run.stderr.splitlines() if line.startswith("[")]
    assert progress[0] == "[  0%] starting — ETA unknown"
    assert progress[-1] == "[100%] checking the result against its parent on held-out samples"
    assert all(re.fullmatch(r"\[ *\d+%\] .+", line) for line in progress)

    jobs = studio_cli("jobs", "--project", project, "--json").json()["jobs"]
    step = next(j for j in jobs if j["kind"] == "optimize")
    measure = next(j for j in jobs if j["kind"] == "measure")
    shown = studio_cli("jobs", "log", step["id"], "--project", project)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.strip().splitlines()
    assert all(re.match(STAMP, line) for line in lines), lines
    text = "\n".join(line[20:] for line in lines)
    assert f"job {step['id']}: studio.jobs.targets:technique_step on cpu" in text
    assert "  job.technique: prune.magnitude" in text and "  job.params: sparsity 0.5" in text
    for message in ("[  0%] starting", "[  2%] loading the model", "[ 20%] pruning", "[100%] done"):
        assert f"\n{message}\n" in text
    assert "wrote digits_cnn.safetensors (" in text
    result = text[text.index("succeeded in") :]
    assert "  details.sparsity: 0.5" in result
    assert outcome["notes"] and all(f"  notes: {note}" in result for note in outcome["notes"])

    measured = studio_cli("jobs", "log", measure["id"], "--project", project).stdout
    assert "  request.settings: runtime onnxruntime, device cpu" in measured
    assert re.search(r"  latency_ms: p50 [\d.]+", measured) and "  size_bytes: " in measured

    followed = studio_cli("jobs", "log", step["id"], "--follow", "--project", project)
    # an ended job: its whole log, then exit
    assert followed.returncode == 0 and followed.stdout.strip() == shown.stdout.strip()
    refused = studio_cli("jobs", "log", step["id"], "--follow", "--json", "--project", project)
    assert refused.returncode == 2 and "--follow" in refused.stderr


# -- following a running job ----------------------------------------------------------------------------


class Lines:
    """A subprocess's stdout, line by line, waited on with a timeout."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [self._queue.put(line) for line in proc.stdout], daemon=True).start()

    def wait_for(self, fragment: str, timeout: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout
        while not any(fragment in line for line in self.seen):
            left = deadline - time.monotonic()
            assert left > 0, f"never printed {fragment!r}; printed {self.seen}"
            try:
                self.seen.append(self._queue.get(timeout=left))
            except queue.Empty:
                continue


def _studio(*args: object, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "studio", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or os.environ.copy(),
    )


def test_follow_prints_a_running_jobs_log_as_it_grows_and_stops_when_the_job_ends(
    studio_cli, tmp_path: Path
) -> None:
    project = tmp_path / "p"
    assert studio_cli("import", DEMO_ONNX, "--project", project).returncode == 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FAULTY), os.environ.get("PYTHONPATH", "")])}
    step = _studio("optimize", "1", "faulty.crash_midway", "--set", "how=hang", "--project", project, env=env)
    started: list[subprocess.Popen] = [step]
    try:
        deadline = time.monotonic() + WAIT_S
        while not (
            running := studio_cli("jobs", "--project", project, "--state", "running", "--json").json()["jobs"]
        ):
            assert time.monotonic() < deadline and step.poll() is None, "the step never started"
            time.sleep(0.2)
        job = running[0]["id"]

        interrupted = _studio("jobs", "log", job, "--follow", "--project", project)
        follower = _studio("jobs", "log", job, "--follow", "--project", project)
        started += [interrupted, follower]
        Lines(interrupted).wait_for("] waiting to be cancelled")  # printed while the job still runs
        live = Lines(follower)
        live.wait_for("] half way")
        assert studio_cli("jobs", "--project", project, "--state", "running", "--json").json()["jobs"]

        interrupted.send_signal(signal.SIGINT)  # Ctrl-C: following ends quietly, the job runs on
        assert interrupted.wait(WAIT_S) == 0
        assert interrupted.stderr.read() == ""
        assert follower.poll() is None

        assert studio_cli("jobs", "cancel", job, "--project", project).returncode == 0
        live.wait_for("cancelled after")  # the job ended: the follower prints the end and exits
        assert follower.wait(WAIT_S) == 0
        step.communicate(timeout=WAIT_S)
        assert re.match(STAMP + f"job {job}: ", live.seen[0])
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_the_command_lines_progress_goes_to_stderr_only() -> None:
    """The reporter that commands get from ``_progress_bar`` writes to stderr, never to stdout."""
    import argparse

    from studio import cli

    args = argparse.Namespace(json=True)
    saved = sys.stderr, sys.stdout
    sys.stderr, sys.stdout = io.StringIO(), io.StringIO()
    try:
        show = cli._progress_bar(args)
        show(0.5, "half way")
        cli._finish_progress(args)
        out, err = sys.stdout.getvalue(), sys.stderr.getvalue()
    finally:
        sys.stderr, sys.stdout = saved
    assert out == "" and err == "[ 50%] half way — ETA unknown\n"
