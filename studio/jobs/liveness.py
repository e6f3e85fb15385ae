"""Whether the process that owns a job is still there, asked by any process that opens the project.

A job is owned by the process that runs its job manager (the command line or the window), not
by the worker that computes it: only the owner records the job's outcome, so once it is gone
nobody ever will. The owner is recorded as host, PID and start time. A PID alone is not enough,
because the system hands a freed PID to the next process; the start time tells a new holder of
the PID from the owner. A process on another machine cannot be asked, so there the owner's
heartbeat decides: an owner silent for much longer than its heartbeat interval is gone.

Nothing here opens the database: the caller reads the job and asks about its owner.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

HEARTBEAT_INTERVAL_S = 10.0
# Generous: a busy machine, a slow shared disk or a clock slightly off must not end a live job.
SILENT_OWNER_LIMIT = timedelta(minutes=2)

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
_GONE_STATES = ("Z", "X", "x")  # a zombie has exited, it only waits to be reaped


@dataclass(frozen=True)
class Owner:
    """Who records a job's outcome: ``started`` is None where the system does not say."""

    host: str
    pid: int
    started: str | None


def this_process() -> Owner:
    """The owner a job submitted from this process records."""
    pid = os.getpid()
    return Owner(host=socket.gethostname(), pid=pid, started=start_token(pid))


def start_token(pid: int) -> str | None:
    """When process ``pid`` started, as this system counts it; None where that cannot be read.

    On Linux: the boot's id and field 22 of ``/proc/PID/stat`` (clock ticks since boot), so a
    process of a later boot with the same PID and tick count is not taken for the owner either.
    """
    fields = _stat_fields(pid)
    return None if fields is None or fields[0] in _GONE_STATES else _token(fields)


def owner_gone(
    host: str | None,
    pid: int | None,
    started: str | None,
    heartbeat: datetime | None,
    *,
    now: datetime | None = None,
    limit: timedelta = SILENT_OWNER_LIMIT,
) -> bool:
    """True when the owner recorded for a job can no longer finish it.

    On this host: its PID is not alive, or is alive with another start time. On another host (or
    where this system cannot tell): its heartbeat is older than ``limit``. A job with no owner
    recorded was left by a studio that recorded none, and nothing can finish it either.
    """
    if not host or pid is None:
        return True
    if host == socket.gethostname():
        alive = _same_process_alive(pid, started)
        if alive is not None:
            return not alive
    if heartbeat is None:
        return True
    return (now or datetime.now(timezone.utc)) - heartbeat > limit


def _same_process_alive(pid: int, started: str | None) -> bool | None:
    """Whether ``pid`` is the very process that started at ``started``; None when it cannot be told."""
    if pid <= 0:
        return False
    fields = _stat_fields(pid)
    if fields is not None:
        if fields[0] in _GONE_STATES:
            return False
        return started is None or _token(fields) == started
    exists = _pid_exists(pid)
    if exists is not True:
        return exists  # gone, or it cannot be told
    # It exists but its start time is hidden (another user's process under a private /proc).
    return True if started is None else None


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3 onwards of ``/proc/PID/stat``; None without such a file (not Linux, or no process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 2 is the command name in parentheses, which may itself hold spaces and parentheses.
    return stat.rpartition(")")[2].split()


def _token(fields: list[str]) -> str:
    try:
        boot = _BOOT_ID.read_text().strip()
    except OSError:
        boot = ""
    return f"{boot}:{fields[19]}"  # fields[0] is field 3 (the state), so field 22 is fields[19]


def _pid_exists(pid: int) -> bool | None:
    """Signal 0 checks for a process without touching it; None on Windows, where it would kill it."""
    if sys.platform == "win32":
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by another user
    except OSError:
        return None
    return True
