"""A job's log: what a real worker writes into it, and the pieces that write and read it.

The unit tests pass their own clock and callbacks; the worker tests run stand-in jobs in real
spawned worker processes, through the pool and the job manager, and read the files they leave.
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

from jobtools import WAIT_S, spec

from studio.jobs.logs import LogReader, ProgressLog, StampedLines, follow_log, job_log, job_log_path
from studio.jobs.runner import summary_lines

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d "


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# -- writing -----------------------------------------------------------------------------------------


def test_progress_lines_keep_every_new_message_and_thin_out_repeats() -> None:
    lines: list[str] = []
    clock = Clock()
    log = ProgressLog(lines.append, clock=clock)
    for i in range(100):  # a loop reporting its fraction under one message, many times a second
        clock.now = i * 0.01
        log(i / 1000, "epoch 1/3")
    assert lines == ["[  0%] epoch 1/3"]
    clock.now = 1.5
    log(0.12, "epoch 1/3")  # a second later, and the percentage moved
    log(0.12, "epoch 1/3: loss 0.41 acc 0.93 2.1 s")  # a new message at once, however soon
    log(0.12, "epoch 2/3")
    clock.now = 5.0
    log(0.12, "epoch 2/3")  # the same message at the same percentage says nothing new
    assert lines[1:] == ["[ 12%] epoch 1/3", "[ 12%] epoch 1/3: loss 0.41 acc 0.93 2.1 s", "[ 12%] epoch 2/3"]


def test_printed_lines_are_timestamped_and_a_redrawn_bar_keeps_its_last_frame() -> None:
    target = io.StringIO()
    stream = StampedLines(target)
    stream.write("first line\nsecond ")
    stream.write("half\n")
    stream.write(" 10%|#\r 50%|###\r100%|#####\n")
    stream.write("no newline yet")
    assert "no newline yet" not in target.getvalue()
    stream.close()
    lines = target.getvalue().splitlines()
    assert all(re.match(STAMP, line) for line in lines)
    assert [line[20:] for line in lines] == ["first line", "second half", "100%|#####", "no newline yet"]


def test_summaries_keep_figures_and_sentences_and_shrink_tables() -> None:
    lines = summary_lines(
        {
            "accuracy": {"top1": 0.98333, "top5": 1.0},
            "latency_ms": {"p50": 1.23456, "p99": None},
            "notes": ["the best epoch was the last one", "two\nlines"],
            "details": {"layers": [{"name": "conv1"}, {"name": "fc"}], "sparsity": 0.5},
            "request": {"model": {"main": "m.onnx", "input_shapes": [[1, 1, 8, 8]], "extra": []}},
            "skipped": None,
        }
    )
    assert lines == [
        "accuracy: top1 0.9833, top5 1",
        "latency_ms: p50 1.235",
        "notes: the best epoch was the last one",
        "notes: two lines",
        "details.layers: (2 rows)",
        "details.sparsity: 0.5",
        "request.model: main m.onnx, input_shapes [[1, 1, 8, 8]]",
    ]


def test_warnings_become_log_lines_and_each_job_shows_them_again(tmp_path: Path) -> None:
    def warn_twice() -> None:
        for _ in range(2):
            warnings.warn("this setting is deprecated", UserWarning, stacklevel=1)

    for job in (1, 2):  # two jobs of one worker process
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            with job_log(tmp_path / f"job-{job}.log"):
                warn_twice()
                print("a print after it")
    for job in (1, 2):
        lines = (tmp_path / f"job-{job}.log").read_text().splitlines()
        warned = [line for line in lines if "UserWarning: this setting is deprecated" in line]
        assert len(warned) == 1 and re.match(
            STAMP + "WARNING py.warnings: .+test_job_log_files.py:", warned[0]
        )
        assert re.match(STAMP + "a print after it$", lines[-1])


# -- reading -----------------------------------------------------------------------------------------


def test_a_reader_hands_out_whole_lines_and_the_last_partial_one_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "job.log"
    reader = LogReader(path)
    assert reader.read() == ""  # not written yet
    path.write_text("one\ntw")
    assert reader.read() == "one\n"
    with open(path, "a") as stream:
        stream.write("o\nthree")
    assert reader.read() == "two\n"
    assert reader.read(final=True) == "three\n"


def test_a_reader_starts_at_the_tail_skips_a_flood_and_restarts_on_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "job.log"
    path.write_text("".join(f"line {i}\n" for i in range(1000)))
    tail = LogReader(path, tail=40, limit=1000)
    assert tail.read().splitlines() == ["line 996", "line 997", "line 998", "line 999"]  # whole lines
    assert tail.read() == ""
    with open(path, "a") as stream:
        stream.write("x" * 5000 + "\nafter the flood\n")
    text = tail.read()
    assert "bytes of the log left out" in text and text.endswith("after the flood\n")
    path.write_text("a new log\n")
    assert tail.read() == "a new log\n" and tail.restarted


def test_following_prints_what_is_written_until_the_job_ends(tmp_path: Path) -> None:
    path = tmp_path / "job.log"
    script = iter(["started\n", "epoch 1\nepo", "ch 2\n", "done"])  # what the job writes between polls
    state = {"polls": 0}

    def ended() -> bool:
        return state["polls"] >= 4

    def wait(_seconds: float) -> None:
        state["polls"] += 1
        with open(path, "a") as stream:
            stream.write(next(script))

    chunks = list(follow_log(path, ended, wait=wait))
    assert chunks == ["started\n", "epoch 1\n", "epoch 2\n", "done\n"]


# -- a real worker's log -----------------------------------------------------------------------------


def test_a_real_jobs_log_has_its_settings_progress_warnings_notes_and_result(make_manager, project) -> None:
    manager, _ = make_manager(cpu_workers=1)
    record = manager.wait(manager.submit(spec("train", epochs=3, steps=4)), WAIT_S)
    assert record.state == "succeeded"
    path = job_log_path(project.logs_dir, record.id)
    assert Path(record.log_path) == path
    lines = path.read_text().splitlines()
    assert all(re.match(STAMP, line) for line in lines), lines
    text = "\n".join(line[20:] for line in lines)
    assert re.search(rf"^job {record.id}: standins:train on cpu \(pid \d+\)$", text, re.M)
    assert "  epochs: 3\n  steps: 4" in text  # the settings it was given
    for epoch, loss in ((1, 0.5), (2, 0.333), (3, 0.25)):  # every epoch's figures
        assert f"] epoch {epoch}/3: loss {loss} acc 0.8{epoch} 0.01 s/epoch" in text
    assert "WARNING py.warnings: " in text and "UserWarning: the learning rate looks high" in text
    assert text.count("] epoch 1/3\n") == 1  # 200 reports of one message, one line
    result = text[text.index("succeeded in") :]
    assert "  accuracy: top1 0.83, top5 0.99" in result and "  losses: 0.5, 0.333, 0.25" in result
    assert "  notes: the best epoch was the last one\n  notes: more epochs may help" in result


def test_a_failed_jobs_log_ends_with_the_traceback_and_the_reason(make_manager, project) -> None:
    manager, _ = make_manager(cpu_workers=1)
    record = manager.wait(manager.submit(spec("crash", how="raise")), WAIT_S)
    assert record.state == "failed"
    text = job_log_path(project.logs_dir, record.id).read_text()
    assert "[ 10%] about to crash (raise)" in text
    assert re.search(STAMP + r"RuntimeError: crashed on purpose \(raise\)", text)
    assert text.rstrip().splitlines()[-1].endswith("the job failed: RuntimeError: crashed on purpose (raise)")
    assert "failed after" in text


def test_a_job_stopped_at_its_time_limit_says_so_in_its_log(make_manager, project) -> None:
    manager, _ = make_manager(cpu_workers=1)
    record = manager.wait(manager.submit(spec("hang", timeout_s=1.0)), WAIT_S)
    assert record.state == "failed"
    text = job_log_path(project.logs_dir, record.id).read_text()
    assert "[  0%] hanging" in text
    assert re.search(STAMP + "the job reached its time limit; its worker is terminated", text)
