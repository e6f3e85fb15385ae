"""Run the whole suite the way the studio is used: the headless studio without Qt, then the window.

    python tests/run.py [PYTEST ARGS...]

Two pytest passes, in the environment a user has (bytecode written, no display needed):
1. every test not marked ``ui``, in processes where Qt cannot be imported at all (``tests/without_qt``
   is first on PYTHONPATH, so the command-line subprocesses and spawned workers refuse it too):
   the command line, jobs, store, bundles, export and reports must need no Qt;
2. the tests marked ``ui``, with Qt on the offscreen platform.

Each pass runs its tests in as many pytest processes as the machine has cores, up to four
(pytest-xdist, part of the dev extra): most tests wait on real subprocesses, workers and files,
and two processes on two cores took the suite from 18.5 to 13 minutes. ``-n N`` chooses another
number (``-n 0``: one process), and without pytest-xdist the passes run in one process each.

Arguments go to both passes; a ``-m EXPR`` is combined with each pass's own selection. The closing
line adds both passes up; the exit code is non-zero when either pass failed, or when neither ran a
test.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WITHOUT_QT = ROOT / "tests" / "without_qt"
NO_TESTS_COLLECTED = 5
MAX_PROCESSES = 4  # each test may start workers of its own: more processes only crowd the cores


def _environment(*, qt: bool) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["QT_QPA_PLATFORM"] = "offscreen"
    if not qt:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(WITHOUT_QT), env.get("PYTHONPATH")) if p)
    return env


def _processes(args: list[str]) -> list[str]:
    """``-n N`` for pytest-xdist where it is installed and the caller chose no number."""
    chosen = any(a in ("-n", "--numprocesses") or a.startswith(("-n", "--numprocesses=")) for a in args)
    if chosen or importlib.util.find_spec("xdist") is None:
        return []
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return ["-n", str(max(1, min(MAX_PROCESSES, cores)))]


def _run_pass(title: str, args: list[str], *, qt: bool, report: Path) -> int:
    print(f"\n=== {title} ===", flush=True)
    command = [sys.executable, "-m", "pytest", f"--junitxml={report}", *_processes(args), *args]
    return subprocess.run(command, cwd=ROOT, env=_environment(qt=qt)).returncode


def _counts(report: Path) -> dict[str, int]:
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    if not report.exists():
        return counts
    for suite in ET.parse(report).getroot().iter("testsuite"):
        tests, skipped = int(suite.get("tests", 0)), int(suite.get("skipped", 0))
        failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        counts["passed"] += tests - skipped - failed
        counts["failed"] += failed
        counts["skipped"] += skipped
    return counts


def _split_marker(argv: list[str]) -> tuple[str | None, list[str]]:
    """The user's ``-m EXPR`` (combined below with each pass's own), and the other arguments."""
    marker, rest = None, []
    args = iter(argv)
    for arg in args:
        if arg == "-m":
            marker = next(args, None)
        elif arg.startswith("-m"):
            marker = arg[2:]
        else:
            rest.append(arg)
    return marker, rest


def _select(own: str, marker: str | None) -> list[str]:
    return ["-m", own if marker is None else f"({own}) and ({marker})"]


def main(argv: list[str]) -> int:
    marker, args = _split_marker(argv)
    with tempfile.TemporaryDirectory(prefix="studio-tests-") as folder:
        reports = Path(folder) / "headless.xml", Path(folder) / "window.xml"
        headless = _run_pass(
            "tests below the window, Qt not importable",
            ["-p", "no:pytest-qt", "--ignore=tests/ui", *_select("not ui", marker), *args],
            qt=False,
            report=reports[0],
        )
        window = _run_pass(
            "the window's tests, Qt offscreen", [*_select("ui", marker), *args], qt=True, report=reports[1]
        )
        totals = [_counts(report) for report in reports]
    passed, failed, skipped = (sum(t[key] for t in totals) for key in ("passed", "failed", "skipped"))
    print(f"\ntotal: {passed} passed, {failed} failed, {skipped} skipped")
    codes = [code for code in (headless, window) if code != NO_TESTS_COLLECTED]
    if not codes:
        return NO_TESTS_COLLECTED
    return max(codes)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
