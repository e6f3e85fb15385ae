"""Where a process's jobs run: the one reading of an executor name, and the pool it makes.

``local`` runs worker processes on this machine: one per GPU asked for (or detected), plus CPU
workers, so that a step on a GPU and the CPU measurement that follows it both find a worker.
``ray`` starts a Ray runtime on this machine; ``ray://HOST:PORT`` joins a cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from studio.errors import StudioError

_RAY_ADDRESS = re.compile(r"ray://[^\s/:]+:\d+")
_CUDA_INDEX = re.compile(r"cuda:\d+")


@dataclass(frozen=True)
class Executor:
    """A parsed executor name: ``kind`` is "local" or "ray"; ``address`` None for a local Ray."""

    kind: str
    address: str | None = None


def parse_executor(text: str) -> Executor:
    """The executor a user named, or one sentence saying what the choices are."""
    name = (text or "").strip()
    if name == "local":
        return Executor("local")
    if name == "ray":
        return Executor("ray")
    if _RAY_ADDRESS.fullmatch(name):
        return Executor("ray", name)
    raise StudioError(f"unknown executor {text!r}: use local, ray, or ray://HOST:PORT")


@dataclass(frozen=True)
class PoolSettings:
    """Which workers to start.

    ``cpu_workers`` None keeps one core free (for the window); ``gpus`` None detects them.
    """

    cpu_workers: int | None = None
    gpus: tuple[str, ...] | None = None
    executor: str = "local"

    def make_pool(self):
        executor = parse_executor(self.executor)
        if executor.kind == "ray":
            from studio.jobs.ray_pool import RayPool

            return RayPool(executor.address)
        from studio.jobs.pool import LocalPool

        return LocalPool(devices=None if self.gpus is None else list(self.gpus), cpu_workers=self.cpu_workers)


def settings_for_device(
    executor: str, device: str, *, cpu_workers: int = 1, measured_on: str = "cpu"
) -> PoolSettings:
    """The workers a command needs for jobs on ``device``: that GPU's worker when it names one, every
    GPU's for "auto", beside ``cpu_workers`` CPU workers, and the worker of ``measured_on``, the
    project's target device, where its measurements run."""
    parse_executor(executor)  # a typo is refused before any process starts
    if _CUDA_INDEX.fullmatch(device):
        gpus: tuple[str, ...] = (device,)
    elif device == "auto":  # a step that trains goes to whichever GPU is free
        from studio.core.hardware import cuda_devices

        gpus = tuple(f"cuda:{d['index']}" for d in cuda_devices())
    elif device == "cuda":
        from studio.core.hardware import cuda_devices

        gpus = tuple(f"cuda:{d['index']}" for d in cuda_devices()[:1])
    else:
        gpus = ()
    if _CUDA_INDEX.fullmatch(measured_on) and measured_on not in gpus:
        gpus = (*gpus, measured_on)
    return PoolSettings(cpu_workers=max(1, cpu_workers), gpus=gpus, executor=executor)
