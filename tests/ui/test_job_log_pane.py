"""The jobs panel's log pane follows the selected job's log while it runs, and its ETA column.

One test drives a real window with a real worker running a real (misbehaving on purpose) step;
the others feed the panel real job events and a log file written by the test, so they can look
at what is appended and when without waiting on a job.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pytest
from uitools import UI_MARKS, WAIT_MS, open_project, save_screenshot, submit

from studio.jobs.events import JobEvent
from studio.jobs.logs import job_log_path
from studio.store import JobRecord
from studio.ui.models.jobs_model import COLUMNS, JobsTableModel
from studio.ui.widgets.jobs_panel import LOG_TAIL_BYTES, JobsPanel

pytestmark = UI_MARKS

FAULTY = Path(__file__).parents[1] / "plugins" / "faulty"
ETA_COLUMN = COLUMNS.index("ETA")


def record(job_id: int, state: str = "queued") -> JobRecord:
    now = datetime.now(timezone.utc)
    return JobRecord(
        job_id, "optimize", "distill", {}, state, 1, None, None, "cpu", 0.0, "", None, None, now, None, None
    )


@pytest.fixture
def panel(qtbot, tmp_path: Path) -> JobsPanel:
    made = JobsPanel()
    made.logs_dir = tmp_path / "logs"
    made.logs_dir.mkdir()
    qtbot.addWidget(made)
    made.show()
    return made


def write(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as stream:
        stream.write(text)


def test_the_pane_appends_what_the_running_job_writes_and_keeps_the_readers_place(qtbot, panel) -> None:
    log = job_log_path(panel.logs_dir, 1)
    write(log, "10:00:00 job 1: distill on cpu\n")
    panel.set_records([record(1)])
    panel.apply(JobEvent("started", 1, device="cpu"))
    panel.select_job(1)
    assert panel.log.toPlainText() == "10:00:00 job 1: distill on cpu"
    first_block = panel.log.document().firstBlock()
    write(log, "10:00:01 [ 10%] epoch 1/3: loss 0.41 acc 0.93 2.0 s\n10:00:02 [ 20%] epoch")
    qtbot.waitUntil(lambda: "epoch 1/3" in panel.log.toPlainText(), timeout=5_000)  # the pane's own timer
    assert panel.log.toPlainText().splitlines() == [
        "10:00:00 job 1: distill on cpu",
        "10:00:01 [ 10%] epoch 1/3: loss 0.41 acc 0.93 2.0 s",
    ]  # a line still being written waits for its end
    assert panel.log.document().firstBlock() == first_block  # appended to, not reloaded
    write(log, " 2/3\n")
    qtbot.waitUntil(lambda: "[ 20%] epoch 2/3" in panel.log.toPlainText(), timeout=5_000)

    write(log, "".join(f"10:00:03 line {i}\n" for i in range(200)))
    qtbot.waitUntil(lambda: "line 199" in panel.log.toPlainText(), timeout=5_000)
    bar = panel.log.verticalScrollBar()
    assert bar.value() == bar.maximum()  # at the end, the pane follows the end
    bar.setValue(0)  # someone scrolls up to read
    write(log, "10:00:04 one more line\n")
    qtbot.waitUntil(lambda: "one more line" in panel.log.toPlainText(), timeout=5_000)
    assert bar.value() == 0  # and keeps their place

    write(log, "10:00:05 succeeded in 5 s\n")
    panel.apply(JobEvent("succeeded", 1, 1.0, result={}))
    assert panel.log.toPlainText().splitlines()[-2:] == [
        "10:00:04 one more line",
        "10:00:05 succeeded in 5 s",
    ]
    assert panel.log.toPlainText().count("10:00:02 [ 20%] epoch 2/3\n") == 1


def test_selecting_a_job_with_a_long_log_shows_its_last_lines(qtbot, panel) -> None:
    log = job_log_path(panel.logs_dir, 2)
    write(log, "".join(f"line {i:06d} of a long log\n" for i in range(100_000)))  # 2.6 MB
    panel.set_records([record(2, "failed")])
    panel.select_job(2)
    text = panel.log.toPlainText()
    assert text.endswith("line 099999 of a long log") and len(text) <= LOG_TAIL_BYTES
    assert text.splitlines()[0].startswith("line ") and text.splitlines()[0].endswith(" of a long log")


def test_a_failure_the_job_could_not_log_is_shown_under_its_log(qtbot, panel) -> None:
    write(job_log_path(panel.logs_dir, 3), "10:00:00 job 3: distill on cpu\n")
    panel.set_records([record(3)])
    panel.apply(JobEvent("started", 3, device="cpu"))
    panel.select_job(3)
    panel.apply(
        JobEvent("failed", 3, error="worker killed by SIGKILL (out of memory, or stopped from outside)")
    )
    assert panel.log.toPlainText().splitlines() == [
        "10:00:00 job 3: distill on cpu",
        "worker killed by SIGKILL (out of memory, or stopped from outside)",
    ]


def test_the_eta_column_is_unknown_until_there_is_evidence_then_follows_the_recent_rate() -> None:
    model = JobsTableModel()
    model.set_records([record(4)])
    model.apply(JobEvent("started", 4, device="cpu"), clock=0.0)
    model.apply(JobEvent("progress", 4, 0.05, "loading"), clock=1.0)  # a fast first 5 %
    assert model.row_at(0).eta(1.0) is None
    assert model.index(0, ETA_COLUMN).data() == "unknown"
    for second in range(2, 31):  # then 0.5 % a second
        model.apply(JobEvent("progress", 4, 0.05 + 0.005 * (second - 1), "epoch 1/10"), clock=float(second))
    row = model.row_at(0)
    assert row.eta(30.0) == pytest.approx((1 - 0.195) / 0.005)  # 161 s, where the whole-run average says 124
    assert row.eta(40.0) == pytest.approx(151.0)  # counted down between events
    model.apply(JobEvent("succeeded", 4, 1.0, result={}), clock=41.0)
    assert model.index(0, ETA_COLUMN).data() == ""


@pytest.mark.slow
def test_the_window_shows_a_running_steps_log_live(qtbot, make_window, demo_project, monkeypatch) -> None:
    """A real step in a real worker: its log lines reach the pane while it still runs, then its end."""
    monkeypatch.syspath_prepend(str(FAULTY))  # the misbehaving plugin, found as an installed one is
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FAULTY), os.environ.get("PYTHONPATH", "")]))
    window = make_window()
    open_project(qtbot, window, demo_project)
    jobs = window.parts.jobs
    job = submit(qtbot, window, 1, "faulty.crash_midway", {"how": "hang"})
    jobs.select_job(job)
    qtbot.waitUntil(lambda: "] waiting to be cancelled" in jobs.log.toPlainText(), timeout=WAIT_MS)
    assert jobs.model.find(job).state == "running"  # shown while it runs
    assert f"job {job}: studio.jobs.targets:technique_step" in jobs.log.toPlainText().splitlines()[0]
    # stuck at one half: once that is most of what it has done, there is no honest figure
    qtbot.waitUntil(lambda: jobs.model.index(0, ETA_COLUMN).data() == "unknown", timeout=WAIT_MS)
    save_screenshot(window.parts.docks["jobs"], "jobs-log-live")
    window.controller.cancel(job)
    qtbot.waitUntil(lambda: not jobs.model.find(job).active, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "cancelled after" in jobs.log.toPlainText(), timeout=WAIT_MS)
    assert jobs.log.toPlainText().count(f"job {job}: ") == 1  # followed, never reloaded twice over
