"""NVML, the NVIDIA driver's management library: the one place the studio talks to it.

Energy (studio.core.energy) and GPU memory (studio.core.gpu_memory) read it through
``nvml_device``. NVML numbers GPUs by PCI bus, whatever ``CUDA_VISIBLE_DEVICES`` says, while
a worker bound to one GPU knows it as ``cuda:0`` (studio.jobs.targets.local_device): the
device is found by its PCI bus id where torch can tell it, else through the visible list.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from typing import Any


class NvmlUnavailable(Exception):
    """NVML cannot answer for this device; the message is the reason, one short clause."""


def nvml_device(device: str) -> tuple[Any, Any]:
    """``(pynvml, handle)`` for ``cuda:N`` as this process sees it; raises NvmlUnavailable."""
    if not device.startswith("cuda"):
        raise NvmlUnavailable("NVML reads NVIDIA GPUs, not the CPU")
    pynvml = _started()
    index = int(device.partition(":")[2] or 0)
    try:
        bus_id = _torch_pci_bus_id(index)
        if bus_id is not None:
            return pynvml, pynvml.nvmlDeviceGetHandleByPciBusId(bus_id)
        key = nvml_key(index, os.environ.get("CUDA_VISIBLE_DEVICES"))
        if isinstance(key, int):
            return pynvml, pynvml.nvmlDeviceGetHandleByIndex(key)
        return pynvml, _handle_by_uuid_prefix(pynvml, key)
    except pynvml.NVMLError as exc:
        raise NvmlUnavailable(f"NVML cannot find {device}: {exc}") from None


def nvml_key(cuda_index: int, visible: str | None) -> int | str:
    """The NVML index (a number) or UUID prefix (text) of CUDA device ``cuda_index`` when
    ``CUDA_VISIBLE_DEVICES`` is ``visible`` (None: unset, every GPU visible in NVML's order)."""
    if visible is None:
        return cuda_index
    entries = [entry.strip() for entry in visible.split(",") if entry.strip()]
    if cuda_index >= len(entries):
        raise NvmlUnavailable(f"CUDA_VISIBLE_DEVICES={visible!r} has no device {cuda_index}")
    entry = entries[cuda_index]
    return int(entry) if entry.isdigit() else entry


@functools.lru_cache(maxsize=1)
def _started_or_reason() -> tuple[Any, str | None]:
    if importlib.util.find_spec("pynvml") is None:
        return None, "nvidia-ml-py is not installed"
    import pynvml

    try:
        pynvml.nvmlInit()  # once per process, left open: a measurement's process is short-lived
    except pynvml.NVMLError as exc:
        return None, f"NVML did not start ({exc}): no NVIDIA driver here"
    return pynvml, None


def _started():
    pynvml, reason = _started_or_reason()
    if pynvml is None:
        raise NvmlUnavailable(reason)
    return pynvml


def _torch_pci_bus_id(index: int) -> str | None:
    """The GPU's PCI bus id from torch, where torch is already loaded with CUDA (never imported here)."""
    torch = sys.modules.get("torch")
    try:
        if torch is None or not torch.cuda.is_available():
            return None
        props = torch.cuda.get_device_properties(index)
        return f"{props.pci_domain_id:08X}:{props.pci_bus_id:02X}:{props.pci_device_id:02X}.0"
    except (AttributeError, RuntimeError, AssertionError):  # an older torch without PCI ids
        return None


def _handle_by_uuid_prefix(pynvml, prefix: str):
    for i in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(i)
        uuid = pynvml.nvmlDeviceGetUUID(handle)
        uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
        if uuid.startswith(prefix) or uuid.removeprefix("GPU-").startswith(prefix):
            return handle
    raise NvmlUnavailable(f"NVML has no GPU {prefix} (from CUDA_VISIBLE_DEVICES)")
