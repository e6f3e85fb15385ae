"""The torch runtime says which mode ran: eager, torch.compile, or torch.compile with CUDA graphs.
A compile that fails is refused in one sentence, never measured eagerly under the compiled name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from studio.api import StudioError
from studio.core.benchmark import BenchmarkSettings, MeasurementRequest, ModelRef, measure_here
from studio.core.models import collect_files
from studio.core.runtime import open_runner

QUICK = {"warmup": 2, "min_runs": 5, "min_seconds": 0.05, "max_seconds": 5.0}
ARCHITECTURE = """
import torch

INPUT_SHAPE = (1, 6)


def build_model():
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
"""


@pytest.fixture
def architecture(tmp_path: Path):
    import torch

    (tmp_path / "net.py").write_text(ARCHITECTURE)
    namespace: dict = {}
    exec(ARCHITECTURE, namespace)
    torch.save(namespace["build_model"]().state_dict(), tmp_path / "net.pt")
    return collect_files(tmp_path / "net.py", weights=tmp_path / "net.pt")


def _measure(files, **settings) -> dict:
    request = MeasurementRequest(
        model=ModelRef.of(files, trusted=True),
        settings=BenchmarkSettings(runtime="torch", threads=1, batch=2, **{**QUICK, **settings}),
    )
    return measure_here(request)


def test_eager_is_recorded(architecture) -> None:
    execution = _measure(architecture)["execution"]
    assert execution["mode"] == "eager"
    assert "placement" not in execution  # nodes per provider are ONNX Runtime's


def test_cuda_graphs_are_refused_on_the_cpu(architecture) -> None:
    with pytest.raises(StudioError, match="^CUDA graphs run on a GPU only: use --device cuda:N"):
        open_runner(architecture, runtime="torch", trusted=True, torch_mode="cuda-graphs")


@pytest.mark.slow
def test_torch_compile_is_recorded_when_it_compiles(architecture) -> None:
    """Inductor compiles C++ on the CPU: tens of seconds on two cores."""
    result = _measure(architecture, torch_mode="compile")
    assert result["execution"]["mode"] == "torch.compile"


@pytest.mark.slow
def test_a_compile_that_fails_is_refused_not_measured_eagerly(architecture, tmp_path: Path) -> None:
    """No C++ compiler: the measurement is refused in one sentence (run where CXX names none)."""
    code = (
        "import sys\n"
        "from studio.api import StudioError\n"
        "from studio.core.models import collect_files\n"
        "from studio.core.runtime import open_runner\n"
        f"files = collect_files({str(tmp_path / 'net.py')!r}, weights={str(tmp_path / 'net.pt')!r})\n"
        "try:\n"
        "    open_runner(files, runtime='torch', trusted=True, torch_mode='compile')\n"
        "except StudioError as error:\n"
        "    print(error)\n"
        "    sys.exit(2)\n"
    )
    env = {**os.environ, "CXX": str(tmp_path / "no-compiler"), "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "c")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stdout.startswith("torch.compile failed on this machine (")
    assert done.stdout.rstrip().endswith("measure in eager mode instead (leave out --torch-mode)")


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["eager", "cuda-graphs"])
def test_on_a_gpu_the_peak_memory_and_mode_are_recorded(architecture, mode: str) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine")
    execution = _measure(architecture, device="cuda:0", torch_mode=mode)["execution"]
    assert execution["mode"] == {"eager": "eager", "cuda-graphs": "torch.compile (CUDA graphs)"}[mode]
    assert execution["peak_memory"]["bytes"] > 0
    assert execution["peak_memory"]["source"].startswith("torch.cuda.max_memory_allocated")
    energy = execution["energy"]
    assert ("joules_per_inference" in energy and energy["joules_per_inference"] > 0) or energy["missing"]
