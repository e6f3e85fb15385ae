"""Which workers the window's projects run on, from the preferences: cheap to import (no Qt, no torch)."""

from __future__ import annotations

import shutil

from studio.engine.executors import PoolSettings


def pool_settings(settings) -> PoolSettings:
    """Workers from the preferences (``StudioSettings``). GPUs are looked for only where an NVIDIA
    driver is installed, so that a machine without one never imports torch in the window process
    only to find none."""
    gpus = None if shutil.which("nvidia-smi") else ()
    return PoolSettings(cpu_workers=settings.cpu_workers or None, gpus=gpus, executor=settings.executor)


def detected_devices() -> tuple[list[str], str]:
    """The devices jobs can run on ("cpu", "cuda:0", ...) and the CPU's name. torch (which lists
    the GPUs) is imported only where an NVIDIA driver is installed."""
    from studio.core.hardware import cpu_info

    cpu = str(cpu_info()["model"])
    if shutil.which("nvidia-smi") is None:
        return ["cpu"], cpu
    from studio.core.hardware import device_choices

    return device_choices(), cpu
