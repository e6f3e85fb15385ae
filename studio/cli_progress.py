"""The command line's one progress reporter: a live bar on a terminal, plain lines everywhere else.

Progress goes to stderr, so stdout (a result, or ``--json``) is never mixed with it. On a
terminal one line redraws itself: bar, percentage, message and ETA. When stderr is a file or a
pipe (a CI log, ``nohup``), a redrawn line would be noise, and silence would hide a nine-minute
run: one plain line is written when the message changes (at most one a second) and every few
seconds otherwise, such as ``[ 42%] epoch 3/10: loss 0.41 — ETA 2 min 10 s``. The ETA comes from
``studio.jobs.events.EtaEstimator``, as in the window.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import TextIO

from studio.cli_args import terminal_safe
from studio.jobs.events import EtaEstimator, duration_text

BAR_WIDTH = 24
REDRAW_INTERVAL_S = 0.1  # a terminal's bar is redrawn at most this often
LINE_INTERVAL_S = 5.0  # without a terminal: a line at least this often while progress comes in ...
CHANGED_LINE_INTERVAL_S = 1.0  # ... and at most one a second, even when the message changes


class ProgressReporter:
    """``reporter(fraction, message)`` for every progress report, then ``reporter.finish()``.

    Pass the same clock to every call in tests; nothing here sleeps or starts a thread.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        interactive: bool,
        clock: Callable[[], float] = time.monotonic,
        width: int | None = None,
    ) -> None:
        self._stream, self._interactive, self._clock = stream, interactive, clock
        self._width = width
        self._eta = EtaEstimator()
        self._latest: tuple[float, str] | None = None
        self._shown: tuple[float, str] | None = None  # what was last written
        self._shown_at = float("-inf")
        self._drawn = 0  # characters of the bar line now on the terminal

    def __call__(self, fraction: float, message: str = "") -> None:
        now = self._clock()
        self._eta.update(now, fraction)
        update = (min(max(float(fraction), 0.0), 1.0), terminal_safe(_first_line(message)))
        self._latest = update
        if self._due(update, now):
            self._show(update, now)

    def finish(self) -> None:
        """Write the last state if it was not shown, and end the bar's line on a terminal."""
        if self._latest is not None and self._latest != self._shown:
            self._show(self._latest, self._clock())
        if self._interactive and self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = 0

    def _due(self, update: tuple[float, str], now: float) -> bool:
        since = now - self._shown_at
        if self._shown is None:
            return True
        if self._interactive:
            return update[0] >= 1.0 or since >= REDRAW_INTERVAL_S
        if update[1] != self._shown[1]:
            return since >= CHANGED_LINE_INTERVAL_S
        return since >= LINE_INTERVAL_S

    def _show(self, update: tuple[float, str], now: float) -> None:
        fraction, message = update
        eta = "" if fraction >= 1.0 else f" — ETA {duration_text(self._eta.eta(now)) or 'unknown'}"
        percent = f"{int(round(100 * fraction)):3d}%"
        if self._interactive:
            self._draw(fraction, percent, message, eta)
        else:
            self._stream.write(f"[{percent}] {message}".rstrip() + eta + "\n")
            self._stream.flush()
        self._shown, self._shown_at = update, now

    def _draw(self, fraction: float, percent: str, message: str, eta: str) -> None:
        done = int(round(fraction * BAR_WIDTH))
        head = f"[{'#' * done}{'.' * (BAR_WIDTH - done)}] {percent} "
        room = max(0, self._columns() - 1 - len(head) - len(eta))
        if len(message) > room:
            message = message[: max(0, room - 1)] + "…" if room else ""
        line = f"{head}{message}{eta}"
        self._stream.write("\r" + line + " " * max(0, self._drawn - len(line)))
        self._stream.flush()
        self._drawn = len(line)

    def _columns(self) -> int:
        if self._width is not None:
            return self._width
        try:
            return os.get_terminal_size(self._stream.fileno()).columns
        except (AttributeError, OSError, ValueError):
            return 100


def progress_reporter(stream: TextIO | None = None) -> ProgressReporter:
    """The reporter for ``stream`` (stderr by default): a bar on a terminal, plain lines otherwise."""
    stream = stream if stream is not None else sys.stderr
    try:
        interactive = stream.isatty()
    except (AttributeError, ValueError):
        interactive = False
    return ProgressReporter(stream, interactive=interactive)


def _first_line(message: str) -> str:
    text = str(message).strip()
    return text.splitlines()[0] if text else ""
