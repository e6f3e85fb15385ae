"""The open project as the window holds it: the engine that runs its work, with the window's
workers lowered in CPU priority so that its event loop stays responsive.

Every command the window sends goes to :class:`studio.engine.Engine`, the same methods the
command line and the Python API use; nothing here decides anything about the work itself.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from studio.engine import Engine, PoolSettings
from studio.jobs.events import JobEvent

WORKER_NICENESS = 10  # jobs yield the CPU to the window (Unix niceness; 0 is normal, 19 the lowest)


def open_session(path: Path, pool: PoolSettings | None = None, *, create: bool = False) -> Engine:
    """Open (or make) the project, start its workers, and mark jobs a stopped studio left behind."""
    engine = Engine.open(Path(path), pool, create=create)
    if hasattr(engine.pool, "workers"):
        engine.subscribe(lambda event: _lower_worker_priority(engine, event))
    return engine


def _lower_worker_priority(engine: Engine, event: JobEvent) -> None:
    """Run the worker of a job that starts at a lower CPU priority than the window.

    On a machine with as many busy workers as cores, the window otherwise waits for a time slice
    and its event loop stalls for a few hundred milliseconds; a niced worker loses only what the
    window actually uses. Latency figures are unaffected on an idle machine.
    """
    if event.kind != "started" or not hasattr(os, "setpriority"):
        return
    for worker in engine.pool.workers():
        if worker.job_id == event.job_id and worker.pid:
            with contextlib.suppress(OSError):  # already ended, or not ours to change
                if os.getpriority(os.PRIO_PROCESS, worker.pid) < WORKER_NICENESS:
                    os.setpriority(os.PRIO_PROCESS, worker.pid, WORKER_NICENESS)
