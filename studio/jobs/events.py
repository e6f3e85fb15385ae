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
    eta_s: float | None = None
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


def eta_seconds(elapsed_s: float, fraction: float | None) -> float | None:
    """Time left at the rate seen so far; unknown until there is some progress."""
    if fraction is None or fraction <= 0.0 or elapsed_s < 0.0:
        return None
    return max(0.0, elapsed_s / min(fraction, 1.0) - elapsed_s)


def clamp_fraction(value: float) -> float:
    """Progress from a target, held to 0..1 so that a sloppy plugin cannot break the record."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return 0.0
    if value != value:  # NaN
        return 0.0
    return min(1.0, max(0.0, value))
