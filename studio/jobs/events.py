"""What a pool tells about a job, in the small vocabulary a window can show.

A job is ``started``, reports ``progress`` any number of times, then ends with exactly one of
``succeeded`` (with its result), ``failed`` (with one sentence) or ``cancelled``; the manager
adds ``interrupted`` for jobs it could not finish before it closed. Events are plain values so
that they can be queued, logged and marshalled to a UI thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

EventKind = Literal["started", "progress", "succeeded", "failed", "cancelled", "interrupted"]
FINAL_EVENTS = ("succeeded", "failed", "cancelled", "interrupted")
_STATES = {"started": "running", "progress": "running"}


@dataclass(frozen=True)
class JobEvent:
    kind: EventKind
    job_id: int
    fraction: float | None = None
    message: str = ""
    result: dict[str, Any] | None = None
    error: str | None = None
    device: str | None = None

    @property
    def final(self) -> bool:
        return self.kind in FINAL_EVENTS

    @property
    def state(self) -> str:
        """The job state this event leaves the job in, as the project records it."""
        return _STATES.get(self.kind, self.kind)


ETA_MIN_SECONDS = 3.0  # no estimate from less than this much of the run ...
ETA_MIN_PROGRESS = 0.02  # ... or less progress than this: the first second says little about the rest
_MAX_POINTS = 256


class EtaEstimator:
    """Seconds left in one job, from the rate of its progress over the recent half of its run.

    Feed it every progress report as ``update(now, fraction)`` with the caller's clock. The rate is
    the progress made over the last half of the time observed so far: a quick first 5 % (opening
    the model, a warm cache) falls out of the window as soon as the slow part has run as long, a
    long run's figure moves slowly, and a plain average over the whole run -- the cause of
    estimates 5 to 10 times too short -- is never used. The estimate is unknown (None) until the
    job has run ``min_seconds`` and moved ``min_progress``, and while the recent half shows no
    progress at all. Progress that goes backwards (a new job reported on the same line) starts over.
    """

    def __init__(
        self, *, min_seconds: float = ETA_MIN_SECONDS, min_progress: float = ETA_MIN_PROGRESS
    ) -> None:
        self._min_seconds, self._min_progress = min_seconds, min_progress
        self.reset()

    def reset(self) -> None:
        self._points: list[tuple[float, float]] = []
        self._estimate: tuple[float, float] | None = None  # (when, seconds left then)

    def update(self, now: float, fraction: float | None) -> float | None:
        """Record progress ``fraction`` (0..1) reached at time ``now`` (seconds); the estimate then."""
        if fraction is None:
            return self.eta(now)
        fraction = clamp_fraction(fraction)
        if self._points:
            last_t, last_f = self._points[-1]
            if fraction < last_f or now < last_t:
                self.reset()
            elif now == last_t:
                self._points.pop()
        self._points.append((now, fraction))
        if len(self._points) > _MAX_POINTS:
            self._points = [self._points[0], *self._points[1:-1:2], self._points[-1]]
        self._estimate = self._compute(now, fraction)
        return None if self._estimate is None else self._estimate[1]

    def eta(self, now: float) -> float | None:
        """The last estimate, counted down to ``now``; unknown once it has run out with the job unfinished."""
        if self._estimate is None:
            return None
        at, left = self._estimate
        if left == 0.0:
            return 0.0
        remaining = left - max(0.0, now - at)
        return remaining if remaining > 0.0 else None

    def _compute(self, now: float, fraction: float) -> tuple[float, float] | None:
        if fraction >= 1.0:
            return (now, 0.0)
        t0, f0 = self._points[0]
        elapsed = now - t0
        if elapsed < self._min_seconds or fraction - f0 < self._min_progress:
            return None
        since = now - elapsed / 2.0
        rate = (fraction - _progress_at(self._points, since)) / (now - since)
        if rate <= 0.0:
            return None
        return (now, (1.0 - fraction) / rate)


def _progress_at(points: list[tuple[float, float]], when: float) -> float:
    """Progress at ``when``, read off the straight lines between the reports around it."""
    previous = points[0]
    for point in points[1:]:
        if point[0] >= when:
            span = point[0] - previous[0]
            if span <= 0.0:
                return point[1]
            return previous[1] + (point[1] - previous[1]) * (when - previous[0]) / span
        previous = point
    return previous[1]


def duration_text(seconds: float | None) -> str:
    """A duration as the window and the command line show it: "42 s", "2 min 10 s", "1 h 05 min"."""
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def clamp_fraction(value: float) -> float:
    """Progress from a target, held to 0..1 so that a sloppy plugin cannot break the record."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return 0.0
    if value != value:  # NaN
        return 0.0
    return min(1.0, max(0.0, value))
