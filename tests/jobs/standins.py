"""Job functions with known behaviour (echo, sleep, crash, hang, write files) for the pool's every path.

Loaded by workers as ``standins:NAME``, the way a third party's job function is: this folder is on
the Python path of the test processes and of every process they start.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studio.api import Cancelled
from studio.jobs.runner import WORKER_DEVICE_ENV

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
CancelRequested = Callable[[], bool]


def echo(progress: Progress, cancel_requested: CancelRequested, **kwargs: Any) -> dict:
    """Hand the arguments back, print and log them, and say where it ran."""
    print(f"echo {kwargs}")
    log.info("echo logged %s", kwargs)
    return {
        "echo": kwargs,
        "pid": os.getpid(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "device": os.environ.get(WORKER_DEVICE_ENV),
    }


def sleep(
    progress: Progress, cancel_requested: CancelRequested, seconds: float = 1.0, steps: int = 10
) -> dict:
    """Sleep in steps, reporting progress and stopping when asked."""
    steps = max(1, int(steps))
    for step in range(steps):
        if cancel_requested():
            print(f"stopping at step {step} of {steps}: cancel requested")
            raise Cancelled("cancelled by the user")
        time.sleep(seconds / steps)
        progress((step + 1) / steps, f"step {step + 1} of {steps}")
    return {"slept_s": seconds, "pid": os.getpid()}


def crash(progress: Progress, cancel_requested: CancelRequested, how: str = "exit", code: int = 3) -> dict:
    """End badly on purpose: "exit" (with ``code``), "segfault", "kill", "oom" or "raise"."""
    progress(0.1, f"about to crash ({how})")
    if how == "exit":
        os._exit(code)
    if how == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if how == "oom":
        _run_out_of_memory()
    raise RuntimeError(f"crashed on purpose ({how})")


def hang(progress: Progress, cancel_requested: CancelRequested, seconds: float = 3600.0) -> dict:
    """Report once, then ignore every request to stop."""
    progress(0.0, "hanging")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return {}


def write_files(progress: Progress, cancel_requested: CancelRequested, output_dir: str, files: dict) -> dict:
    """Write text files into ``output_dir``, the way a technique writes its output model."""
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    progress(1.0, f"wrote {len(files)} files")
    return {"main": str(folder / sorted(files)[0]) if files else str(folder), "files": sorted(files)}


def train(progress: Progress, cancel_requested: CancelRequested, epochs: int = 3, steps: int = 4) -> dict:
    """A training-like job: per-step and per-epoch progress with figures, a warning, notes and figures back.

    The steps repeat one message many times over, as a real loop reports its fraction.
    """
    import warnings

    losses = []
    for epoch in range(1, epochs + 1):
        for step in range(steps):
            for _ in range(50):
                progress((epoch - 1 + step / steps) / epochs, f"epoch {epoch}/{epochs}")
        if epoch == 2:
            warnings.warn("the learning rate looks high for this batch size", UserWarning, stacklevel=1)
        loss = round(1.0 / (epoch + 1), 3)
        losses.append(loss)
        progress(
            epoch / epochs, f"epoch {epoch}/{epochs}: loss {loss} acc {0.8 + epoch / 100:.2f} 0.01 s/epoch"
        )
    return {
        "accuracy": {"top1": 0.83, "top5": 0.99},
        "losses": losses,
        "notes": ["the best epoch was the last one", "more epochs may help"],
    }


def _run_out_of_memory() -> None:
    """Allocate past a soft address-space limit: a MemoryError without endangering the machine."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as statm:
        in_use = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = in_use + (64 << 20)
    resource.setrlimit(
        resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard)
    )
    try:
        blocks = [bytearray(16 << 20) for _ in range(64)]
        del blocks
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
