"""What this machine can run on: CPU features, CUDA GPUs, ONNX Runtime providers, TensorRT.

Every function here answers with plain data and never raises: a missing driver or library
simply means that device is not offered. Latency figures are meaningless without the machine
they were taken on, so `environment()` is recorded with every measurement.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib.metadata
import importlib.util
import logging
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import studio

log = logging.getLogger(__name__)

_FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_vnni", "amx")
_CPUFREQ = Path("/sys/devices/system/cpu/cpu0/cpufreq")
_AMX_FLAGS = ("amx_tile", "amx_int8", "amx_bf16")


def cpu_info() -> dict:
    """Model name, core counts and the instruction-set flags that decide which int8 kernels run."""
    return copy.deepcopy(_cpu_info())


@functools.lru_cache(maxsize=1)
def _cpu_info() -> dict:
    fields = _read_cpuinfo()
    flags = set(fields.get("flags", "").split())
    return {
        "model": fields.get("model name") or platform.processor() or platform.machine() or "unknown",
        "logical_cores": logical_cores(),
        "physical_cores": physical_cores(),
        "flags": {
            name: (any(f in flags for f in _AMX_FLAGS) if name == "amx" else name in flags)
            for name in _FLAGS_OF_INTEREST
        },
    }


def _read_cpuinfo() -> dict[str, str]:
    """The first processor's fields from /proc/cpuinfo; empty where there is none."""
    fields: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return fields
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def logical_cores() -> int:
    """Cores this process may use (its affinity mask), which a container may set below the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@functools.lru_cache(maxsize=1)
def physical_cores() -> int:
    """Distinct (package, core) pairs: the default thread count, since hyper-threads rarely help inference."""
    cores: set[tuple[str, str]] = set()
    package = core = None
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            package = value.strip()
        elif key == "core id":
            core = value.strip()
        elif not line.strip() and core is not None:
            cores.add((package or "0", core))
            package = core = None
    if core is not None:
        cores.add((package or "0", core))
    found = len(cores) or logical_cores()
    return max(1, min(found, logical_cores()))


def cuda_devices() -> list[dict]:
    """CUDA GPUs as torch sees them; through nvidia-smi when torch is absent or built without CUDA."""
    try:
        if importlib.util.find_spec("torch") is not None:
            import torch

            if torch.version.cuda is not None:
                return _torch_devices(torch)
        return _nvidia_smi_devices()
    except Exception as exc:  # a broken driver must not take the studio down
        log.warning("could not list CUDA devices: %s", exc)
        return []


def _torch_devices(torch) -> list[dict]:
    if not torch.cuda.is_available():
        return []
    devices = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        devices.append(
            {
                "index": index,
                "name": props.name,
                "memory_bytes": int(props.total_memory),
                "capability": f"{props.major}.{props.minor}",
            }
        )
    return devices


def _nvidia_smi_devices() -> list[dict]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    for fields in ("index,name,memory.total,compute_cap", "index,name,memory.total"):
        proc = subprocess.run(
            [exe, f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if proc.returncode == 0:
            return [_smi_row(line) for line in proc.stdout.splitlines() if line.strip()]
    return []


def _smi_row(line: str) -> dict:
    cells = [cell.strip() for cell in line.split(",")]
    return {
        "index": int(cells[0]),
        "name": cells[1],
        "memory_bytes": int(float(cells[2]) * 1024 * 1024),  # reported in MiB
        "capability": cells[3] if len(cells) > 3 else None,
    }


def onnxruntime_providers() -> list[str]:
    try:
        import onnxruntime

        return list(onnxruntime.get_available_providers())
    except Exception as exc:
        log.warning("could not list ONNX Runtime providers: %s", exc)
        return []


def tensorrt_version() -> str | None:
    for dist in ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-cu11"):
        version = _dist_version(dist)
        if version:
            return version
    return None


def memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def describe() -> dict:
    """Everything above in one JSON-ready dict: what `studio devices --json` prints."""
    gpus = cuda_devices()
    devices = ["cpu", *(f"cuda:{gpu['index']}" for gpu in gpus)]
    return {
        "cpu": cpu_info(),
        "memory_bytes": memory_bytes(),
        "cuda": gpus,
        "onnxruntime_providers": onnxruntime_providers(),
        "tensorrt": tensorrt_version(),
        "devices": devices,
        "energy": {device: energy_counter(device) for device in devices},
    }


def energy_counter(device: str) -> dict:
    """``{"source": "rapl"|"nvml"}`` where the device's energy can be measured, else ``{"missing": why}``."""
    from studio.core.energy import meter_for

    try:
        meter = meter_for(device)
    except Exception as exc:  # a broken driver must not take the studio down
        return {"missing": f"the energy counter cannot be read ({exc})"}
    return {"source": meter.source} if meter.available else {"missing": meter.reason}


def device_choices() -> list[str]:
    return ["cpu", *(f"cuda:{gpu['index']}" for gpu in cuda_devices())]


def environment() -> dict:
    """Software and CPU a measurement was taken with; reads versions without importing torch."""
    return {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
        "studio": studio.__version__,
        "numpy": _dist_version("numpy"),
        "onnx": _dist_version("onnx"),
        "onnxruntime": _dist_version("onnxruntime") or _dist_version("onnxruntime-gpu"),
        "torch": _dist_version("torch"),
        "cpu": _cpu_info()["model"],
        **_frequency(),
    }


def _frequency() -> dict:
    """The CPU frequency governor, where the system lets it be read: "powersave" explains a slow
    measurement. (The clock itself changes from run to run: see :func:`cpu_mhz`.)"""
    found: dict = {}
    with contextlib.suppress(OSError):
        found["governor"] = (_CPUFREQ / "scaling_governor").read_text().strip()
    return found


def cpu_mhz() -> int | None:
    """The first CPU's current clock in MHz, or None where it cannot be read."""
    with contextlib.suppress(OSError, ValueError):
        return round(int((_CPUFREQ / "scaling_cur_freq").read_text()) / 1000)
    with contextlib.suppress(TypeError, ValueError):
        return round(float(_read_cpuinfo().get("cpu MHz")))
    return None


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except Exception:
        return None
