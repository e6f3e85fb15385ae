"""Hardware detection on the machine the tests run on, checked against independent sources."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import onnxruntime
import pytest

from studio.core import hardware


def test_cpu_info_shape_and_counts() -> None:
    info = hardware.cpu_info()
    assert info["model"]
    assert 1 <= info["physical_cores"] <= info["logical_cores"] <= (os.cpu_count() or 1)
    assert info["physical_cores"] == hardware.physical_cores()
    assert set(info["flags"]) == {"avx2", "avx512f", "avx512_vnni", "amx"}
    assert all(isinstance(v, bool) for v in info["flags"].values())


def _first_processor() -> dict[str, str]:
    """The first processor's fields from /proc/cpuinfo, read here independently of the studio."""
    fields: dict[str, str] = {}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="needs /proc/cpuinfo")
def test_cpu_info_agrees_with_proc_cpuinfo() -> None:
    fields = _first_processor()
    if "model name" not in fields or "flags" not in fields:
        pytest.skip("this /proc/cpuinfo names no model or flags (not an x86 machine)")
    info = hardware.cpu_info()
    assert info["model"] == fields["model name"]
    flags = set(fields["flags"].split())
    assert info["flags"] == {
        "avx2": "avx2" in flags,
        "avx512f": "avx512f" in flags,
        "avx512_vnni": "avx512_vnni" in flags,
        "amx": bool(flags & {"amx_tile", "amx_int8", "amx_bf16"}),
    }


def test_cpu_info_is_a_fresh_copy() -> None:
    hardware.cpu_info()["flags"]["avx2"] = "changed"
    assert hardware.cpu_info()["flags"]["avx2"] != "changed"


def _nvidia_smi_count() -> int:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return 0
    proc = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10)
    return sum(line.startswith("GPU ") for line in proc.stdout.splitlines()) if proc.returncode == 0 else 0


def test_cuda_devices_agree_with_torch() -> None:
    """torch's count where torch is built with CUDA; otherwise what nvidia-smi lists (none without it)."""
    import torch

    devices = hardware.cuda_devices()
    if torch.version.cuda is not None:
        expected = torch.cuda.device_count() if torch.cuda.is_available() else 0
    else:
        expected = _nvidia_smi_count()
    assert len(devices) == expected
    assert [d["index"] for d in devices] == list(range(expected))
    for device in devices:
        assert set(device) == {"index", "name", "memory_bytes", "capability"}
        assert device["memory_bytes"] > 0
    assert hardware.device_choices() == ["cpu", *(f"cuda:{i}" for i in range(expected))]


def test_onnxruntime_providers_and_tensorrt() -> None:
    providers = hardware.onnxruntime_providers()
    assert providers == onnxruntime.get_available_providers()
    assert "CPUExecutionProvider" in providers
    installed = []
    for dist in ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-cu11"):
        try:
            installed.append(importlib.metadata.version(dist))
        except importlib.metadata.PackageNotFoundError:
            continue
    assert hardware.tensorrt_version() == (installed[0] if installed else None)


def test_describe_is_json_ready() -> None:
    described = hardware.describe()
    again = json.loads(json.dumps(described))
    assert again["devices"] == hardware.device_choices()
    assert again["memory_bytes"] == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert again["cpu"]["logical_cores"] == len(os.sched_getaffinity(0))
    assert again["onnxruntime_providers"] == onnxruntime.get_available_providers()
    assert again["tensorrt"] == hardware.tensorrt_version()


def test_environment_versions_without_importing_torch() -> None:
    """Recorded with every measurement, so it must be cheap: torch is read from metadata only."""
    code = (
        "import json, sys\n"
        "from studio.core import hardware\n"
        "env = hardware.environment()\n"
        "print(json.dumps({'env': env, 'torch_imported': 'torch' in sys.modules}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    result = json.loads(proc.stdout)
    assert result["torch_imported"] is False
    env = result["env"]
    assert env["numpy"] == importlib.metadata.version("numpy")
    assert env["onnx"] == importlib.metadata.version("onnx")
    assert env["torch"] == importlib.metadata.version("torch")
    assert env["onnxruntime"] == onnxruntime.__version__
    assert env["python"] == ".".join(map(str, sys.version_info[:3]))
    assert env["cpu"] == hardware.cpu_info()["model"]
    import studio

    assert env["studio"] == studio.__version__
