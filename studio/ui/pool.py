"""Which workers the window's projects run on, and where a step may go: cheap to import (no Qt, no torch)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence

from studio.engine.executors import PoolSettings

AUTO = "auto"  # the engine's default: a training step on a free GPU when there is one, else the CPU
ALL_GPUS = "all-gpus"  # a training step as data-parallel ranks, one per GPU
AUTO_LABEL = "Automatic (GPU for training when there is one)"


def pool_settings(settings) -> PoolSettings:
    """Workers from the preferences (``StudioSettings``). GPUs are looked for only where an NVIDIA
    driver is installed, so that a machine without one never imports torch in the window process
    only to find none."""
    gpus = None if shutil.which("nvidia-smi") else ()
    return PoolSettings(cpu_workers=settings.cpu_workers or None, gpus=gpus, executor=settings.executor)


def detected_devices() -> tuple[list[dict], str]:
    """The GPUs, as ``hardware.cuda_devices()`` lists them, and the CPU's name. torch (which lists
    the GPUs) is imported only where an NVIDIA driver is installed."""
    from studio.core.hardware import cpu_info

    cpu = str(cpu_info()["model"])
    if shutil.which("nvidia-smi") is None:
        return [], cpu
    from studio.core.hardware import cuda_devices

    return cuda_devices(), cpu


def device_choices(gpus: Sequence[dict]) -> list[tuple[str, str]]:
    """(label, value) for every place a step can be sent: automatic, the CPU, each GPU with its
    name and memory, and, with two GPUs or more, all of them as data-parallel ranks."""
    from studio.tables import human_bytes

    choices = [(AUTO_LABEL, AUTO), ("CPU", "cpu")]
    for gpu in gpus:
        memory = f", {human_bytes(gpu['memory_bytes'])}" if gpu.get("memory_bytes") else ""
        choices.append((f"cuda:{gpu['index']} — {gpu['name']}{memory}", f"cuda:{gpu['index']}"))
    if len(gpus) > 1:
        choices.append((f"All GPUs, data-parallel ({len(gpus)} ranks)", ALL_GPUS))
    return choices


def placement_request(choice: str, gpus: Sequence[dict]) -> tuple[str, tuple[str, ...]]:
    """The ``device`` and ``ranks`` that ``Engine.submit_optimize`` and ``submit_recipe`` take for a
    picker's value: "all-gpus" becomes one rank per GPU, anything else is the device itself."""
    if choice == ALL_GPUS:
        ranks = tuple(f"cuda:{gpu['index']}" for gpu in gpus)
        return AUTO, ranks if len(ranks) > 1 else ()
    return choice or AUTO, ()
