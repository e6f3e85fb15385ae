"""The small parts in one process: ETA, progress throttling, and a job's log redirection."""

from __future__ import annotations

import logging
import os
import sys

from studio.jobs.events import JobEvent, clamp_fraction
from studio.jobs.logs import job_log
from studio.jobs.runner import ThrottledProgress


def test_progress_from_a_sloppy_target_is_held_to_zero_to_one() -> None:
    assert [clamp_fraction(v) for v in (-1, 0.5, 7, float("nan"), "x")] == [0.0, 0.5, 1.0, 0.0, 0.0]


def test_throttled_progress_drops_bursts_but_never_the_last_report() -> None:
    sent: list[tuple] = []
    progress = ThrottledProgress(sent.append, interval=3600.0)
    for step in range(1, 100):
        progress(step / 100, f"step {step}")
    assert sent == [("progress", 0.01, "step 1")]
    progress.flush()
    assert sent[-1] == ("progress", 0.99, "step 99")
    progress(1.0, "done")  # completion always goes out at once
    assert sent[-1] == ("progress", 1.0, "done") and len(sent) == 3


def test_final_events_and_the_states_they_leave() -> None:
    assert [JobEvent(k, 1).state for k in ("started", "progress", "succeeded", "interrupted")] == [
        "running",
        "running",
        "succeeded",
        "interrupted",
    ]
    assert JobEvent("cancelled", 1).final and not JobEvent("progress", 1).final


def test_a_job_log_takes_prints_logging_and_native_writes_then_lets_go(tmp_path, capfd) -> None:
    path = tmp_path / "logs" / "job-1.log"
    with job_log(path):
        print("from print")
        logging.getLogger("studio.test").info("from logging")
        os.write(1, b"from a native library\n")
        print("to stderr", file=sys.stderr)
    print("after the job")
    text = path.read_text()
    for line in ("from print", "INFO studio.test: from logging", "from a native library", "to stderr"):
        assert line in text
    assert "after the job" not in text
    assert "after the job" in capfd.readouterr().out
