"""A job's own log file: what it reports, prints, logs and warns while it runs, and how it ended.

Libraries print to stdout from C as well as from Python (ONNX Runtime, torch warnings), so the
worker points the process's file descriptors 1 and 2 at the log, not only ``sys.stdout``. A
frozen windowed app may have no descriptors 1 and 2 at all; the Python-level redirection still
works there. Every line written from Python starts with the time it was written, so that a log
read after a nine-minute run says when each epoch ended; what native code writes to the
descriptors lands as it is.

The same module reads logs as they grow (``LogReader``), for ``studio jobs log --follow``, the
window's log pane and a Ray task sending its log home while it runs.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
JOB_LOGGER = "studio.job"  # the job's own lines (progress, settings, result): time and text only
REPEAT_INTERVAL_S = 1.0  # an unchanged progress message is logged at most this often
READ_LIMIT_BYTES = 1 << 20
FOLLOW_POLL_S = 0.5

job_logger = logging.getLogger(JOB_LOGGER)


def job_log_path(logs_dir: Path, job_id: int) -> Path:
    return Path(logs_dir) / f"job-{job_id}.log"


def timestamp(when: float | None = None) -> str:
    return time.strftime(TIME_FORMAT, time.localtime(when))


@contextlib.contextmanager
def job_log(path: str | Path, *, descriptors: bool = True) -> Iterator[None]:
    """Send stdout, stderr, Python logging (INFO and up) and warnings to ``path`` for the duration."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8", errors="replace", buffering=1) as stream:
        saved = _redirect_descriptors(stream.fileno()) if descriptors else []
        old_out, old_err = sys.stdout, sys.stderr
        stamped = StampedLines(stream, after=old_err)
        sys.stdout = sys.stderr = stamped
        handler = logging.StreamHandler(stream)
        handler.setFormatter(_JobFormatter())
        root = logging.getLogger()
        old_level = root.level
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            with _warnings_logged():
                yield
        finally:
            root.removeHandler(handler)
            root.setLevel(old_level)
            stamped.close()
            stream.flush()
            sys.stdout, sys.stderr = old_out, old_err
            _restore_descriptors(saved)


def log_to_stderr(who: str, level: int = logging.INFO) -> None:
    """Logging of a process the job started, whose stderr is the job's log: the log's own format,
    each line tagged with ``who``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JobFormatter(who))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)


def append_line(path: str | Path, text: str) -> None:
    """Add one timestamped line to a job's log from outside the job (the pool stopping its worker)."""
    with contextlib.suppress(OSError), open(path, "a", encoding="utf-8", errors="replace") as stream:
        stream.write(f"{timestamp()} {text}\n")


class StampedLines(io.TextIOBase):
    """A text stream that writes whole lines to ``target``, each starting with the time.

    A carriage return without a newline (a console progress bar redrawing itself) replaces the
    line so far, as a terminal would, so the log keeps the bar's last state rather than every frame.
    After ``close`` it writes to ``after``: a library that kept a handle on it during the job
    (a logging handler) then writes where the process's output goes, not to a closed log.
    """

    def __init__(self, target: TextIO, *, after: TextIO | None = None) -> None:
        self._target = target
        self._after = after
        self._partial = ""
        self._lock = threading.Lock()  # prints from a technique's threads

    def write(self, text: str) -> int:
        with self._lock:
            pieces = (self._partial + text).split("\n")
            partial = pieces.pop()
            redrawn = partial.rstrip("\r").rfind("\r")
            self._partial = partial[redrawn + 1 :]
            lines = [piece.rstrip("\r").rsplit("\r", 1)[-1] for piece in pieces]
            if lines:
                stamp = timestamp()
                self._target.write("".join(f"{stamp} {line}\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def close(self) -> None:
        """Write out a last line that never got its newline; the target stays open."""
        with self._lock:
            if self._partial:
                self._target.write(f"{timestamp()} {self._partial}\n")
                self._partial = ""
            self._target.flush()
            if self._after is not None:
                self._target = self._after

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:  # faulthandler and subprocess ask for it
        return self._target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._target.encoding

    @property
    def buffer(self):  # bytes written here skip the timestamps, as native writes do
        return self._target.buffer


class _JobFormatter(logging.Formatter):
    """The job's own lines as "time text"; every other logger's as "time LEVEL name: text".

    ``who`` goes after the time ("rank 1"), for a job whose several processes write one log.
    """

    def __init__(self, who: str = "") -> None:
        tag = f"{who} " if who else ""
        super().__init__(LOG_FORMAT.replace("%(asctime)s ", f"%(asctime)s {tag}", 1), TIME_FORMAT)
        self._plain = logging.Formatter(f"%(asctime)s {tag}%(message)s", TIME_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        if record.name == JOB_LOGGER and record.levelno < logging.WARNING:
            return self._plain.format(record)
        return super().format(record)


@contextlib.contextmanager
def _warnings_logged() -> Iterator[None]:
    """Each warning as one WARNING line of the log, shown again in every job (filters are kept)."""
    warnings_log = logging.getLogger("py.warnings")

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        warnings_log.warning("%s:%s: %s: %s", filename, lineno, category.__name__, message)

    with warnings.catch_warnings():  # entering it forgets which warnings were already shown
        warnings.showwarning = show
        yield


class ProgressLog:
    """Writes a technique's progress reports to the job's log as "[ 42%] message" lines.

    A message that differs from the last one logged is always written; a repeat of it only when
    a second has passed and the percentage has moved, so a loop that reports its fraction a
    thousand times under one message leaves a readable trail rather than a thousand lines.
    """

    def __init__(
        self,
        write: Callable[[str], None] | None = None,
        *,
        interval: float = REPEAT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._write = write or job_logger.info
        self._interval, self._clock = interval, clock
        self._last: tuple[str, int, float] | None = None  # message, percent, when
        self._lock = threading.Lock()

    def __call__(self, fraction: float, message: str = "") -> None:
        percent = int(round(100 * fraction))
        with self._lock:
            now = self._clock()
            last = self._last
            if (
                last is not None
                and message == last[0]
                and (percent == last[1] or now - last[2] < self._interval)
            ):
                return
            self._last = (message, percent, now)
        self._write(progress_line(fraction, message))


def progress_line(fraction: float, message: str) -> str:
    """The one shape of a progress line, "[ 42%] epoch 3/10 ...", in the log and on the command line."""
    return f"[{int(round(100 * fraction)):3d}%] {message}".rstrip()


class LogReader:
    """Reads a log file as it grows, whole lines at a time, and never more than ``limit`` bytes.

    The first read starts ``tail`` bytes before the end (all of the file when None); a read that
    finds more new text than ``limit`` skips to the newest ``limit`` bytes and says so in the text.
    A file that shrank (it was replaced) is read again from its start; ``restarted`` tells a viewer
    to clear what it shows.
    """

    def __init__(self, path: str | Path, *, tail: int | None = None, limit: int = READ_LIMIT_BYTES) -> None:
        self.path = Path(path)
        self._offset: int | None = None if tail is not None else 0
        self._tail, self._limit = tail, limit
        self._pending = b""
        self.restarted = False

    def read(self, *, final: bool = False) -> str:
        """New whole lines since the last read (with ``final``, the unfinished last line too)."""
        self.restarted = False
        try:
            with open(self.path, "rb") as stream:
                size = os.fstat(stream.fileno()).st_size
                if self._offset is None:
                    self._offset = self._line_start(stream, max(0, size - (self._tail or 0)))
                elif size < self._offset:
                    self._offset, self._pending, self.restarted = 0, b"", True
                skipped = max(0, size - self._offset - self._limit)
                stream.seek(self._offset + skipped)
                data = stream.read(size - self._offset - skipped)
        except OSError:  # not written yet, or removed
            return ""
        self._offset += skipped + len(data)
        note = ""
        if skipped:
            self._pending = b""
            note = f"(… {skipped} bytes of the log left out …)\n"
        data = self._pending + data
        if final:
            self._pending = b""
            if data and not data.endswith(b"\n"):
                data += b"\n"
        else:
            cut = data.rfind(b"\n") + 1
            if cut == 0 and len(data) > self._limit:  # one endless line: show it anyway
                data += b"\n"
                cut = len(data)
            data, self._pending = data[:cut], data[cut:]
        return note + data.decode("utf-8", errors="replace")

    @staticmethod
    def _line_start(stream, offset: int) -> int:
        """The start of the first whole line at or after ``offset``: a tail never opens mid-line."""
        if offset == 0:
            return 0
        stream.seek(offset - 1)
        head = stream.read(64 * 1024)
        cut = head.find(b"\n")
        return offset if cut < 0 else offset + cut


def follow_log(
    path: str | Path,
    ended: Callable[[], bool],
    *,
    poll_s: float = FOLLOW_POLL_S,
    wait: Callable[[float], object] = time.sleep,
) -> Iterator[str]:
    """The log's text as it is written, until ``ended()`` says the job is over; then the rest of it.

    ``ended`` is asked before each read, so the read after it says yes still finds every line the
    job wrote before it ended.
    """
    reader = LogReader(path)
    while True:
        over = ended()
        text = reader.read(final=over)
        if text:
            yield text
        if over:
            return
        wait(poll_s)


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
