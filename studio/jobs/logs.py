"""A job's own log file: everything it prints or logs while it runs, and why it failed.

Libraries print to stdout from C as well as from Python (ONNX Runtime, torch warnings), so the
worker points the process's file descriptors 1 and 2 at the log, not only ``sys.stdout``. A
frozen windowed app may have no descriptors 1 and 2 at all; the Python-level redirection still
works there.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def job_log_path(logs_dir: Path, job_id: int) -> Path:
    return Path(logs_dir) / f"job-{job_id}.log"


@contextlib.contextmanager
def job_log(path: str | Path, *, descriptors: bool = True) -> Iterator[None]:
    """Send stdout, stderr and Python logging (INFO and up) to ``path`` for the duration."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8", errors="replace", buffering=1) as stream:
        saved = _redirect_descriptors(stream.fileno()) if descriptors else []
        old_out, old_err = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = stream
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root = logging.getLogger()
        old_level = root.level
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            yield
        finally:
            root.removeHandler(handler)
            root.setLevel(old_level)
            stream.flush()
            sys.stdout, sys.stderr = old_out, old_err
            _restore_descriptors(saved)


def _redirect_descriptors(target: int) -> list[tuple[int, int]]:
    saved = []
    for fd in (1, 2):
        try:
            saved.append((fd, os.dup(fd)))
        except OSError:  # no such descriptor (a windowed app): Python-level redirection is enough
            continue
        _flush_python_stream(fd)
        os.dup2(target, fd)
    return saved


def _restore_descriptors(saved: list[tuple[int, int]]) -> None:
    for fd, copy in saved:
        os.dup2(copy, fd)
        os.close(copy)


def _flush_python_stream(fd: int) -> None:
    stream = sys.__stdout__ if fd == 1 else sys.__stderr__
    if stream is not None:
        with contextlib.suppress(Exception):
            stream.flush()
