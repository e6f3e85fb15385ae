"""Hardware detection on the machine the tests run on, checked against independent sources."""

from __future__ import annotations

import importlib.metadata
import json
import os
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


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="needs /proc/cpuinfo")
def test_cpu_info_agrees_with_proc_cpuinfo() -> None:
    text = Path("/proc/cpuinfo").read_text()
    names = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")]
    flag_lines = [line for line in text.splitlines() if line.startswith("flags")]
    if names:
        assert hardware.cpu_info()["model"] == names[0]
    if flag_lines:
        flags = set(flag_lines[0].split(":", 1)[1].split())
        assert hardware.cpu_info()["flags"]["avx2"] == ("avx2" in flags)
        assert hardware.cpu_info()["flags"]["avx512_vnni"] == ("avx512_vnni" in flags)


def test_cpu_info_is_a_fresh_copy() -> None:
    hardware.cpu_info()["flags"]["avx2"] = "changed"
    assert hardware.cpu_info()["flags"]["avx2"] != "changed"


def test_cuda_devices_agree_with_torch() -> None:
    import torch

    devices = hardware.cuda_devices()
    expected = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if torch.version.cuda is not None:
        assert len(devices) == expected
    for device in devices:
        assert set(device) == {"index", "name", "memory_bytes", "capability"}
        assert device["memory_bytes"] > 0
    assert hardware.device_choices() == ["cpu", *(f"cuda:{d['index']}" for d in devices)]


def test_onnxruntime_providers_and_tensorrt() -> None:
    providers = hardware.onnxruntime_providers()
    assert providers == onnxruntime.get_available_providers()
    assert "CPUExecutionProvider" in providers
    version = hardware.tensorrt_version()
    try:
        expected = importlib.metadata.version("tensorrt")
    except importlib.metadata.PackageNotFoundError:
        expected = None
    if expected is not None:
        assert version == expected
    assert version is None or isinstance(version, str)


def test_describe_is_json_ready() -> None:
    described = hardware.describe()
    again = json.loads(json.dumps(described))
    assert again["devices"][0] == "cpu"
    assert again["memory_bytes"] > 0
    assert again["cpu"]["logical_cores"] >= 1
    assert again["onnxruntime_providers"] == hardware.onnxruntime_providers()


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
