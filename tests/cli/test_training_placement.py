"""Where `studio optimize` trains: a free GPU by default, the CPU with a clear word where there is
none, data-parallel ranks when asked, and one sentence for ranks that cannot be; and where its
result is measured: the project's target device."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from studio.core.hardware import cuda_devices

NET = textwrap.dedent(
    """
    from torch import nn

    INPUT_SHAPE = (1, 1, 8, 8)


    def build_model():
        return nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4),
        )
    """
)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(architecture file, weights, labelled dataset): a model a user imports with --weights."""
    import torch
    from safetensors.torch import save_file

    from studio.core.torch_structure import build_fresh

    folder = tmp_path_factory.mktemp("net")
    arch = folder / "net.py"
    arch.write_text(NET, encoding="utf-8")
    torch.manual_seed(0)
    save_file(
        {k: v.contiguous() for k, v in build_fresh(arch).state_dict().items()},
        str(folder / "net.safetensors"),
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 4, size=256)
    np.savez(folder / "data.npz", x=x, y=y)
    return arch, folder / "net.safetensors", folder / "data.npz"


def _optimize(studio_cli, model, project: Path, *extra: str):
    arch, weights, data = model
    return studio_cli(
        "optimize", arch, "prune.structured", "--weights", weights, "--trust", "--data", data,
        "--set", "finetune_epochs=1", "--no-measure", "--project", project, "--json", *extra, timeout=300,
    )  # fmt: skip


def test_two_cpu_ranks_from_the_command_line(studio_cli, model, tmp_path: Path) -> None:
    result = _optimize(studio_cli, model, tmp_path / "p", "--device", "cpu", "--ranks", "2")
    assert result.returncode == 0, result.stderr
    assert "Trained as 2 data-parallel ranks (gloo: cpu, cpu) in fp32." in result.json()["notes"]
    log = studio_cli("jobs", "log", "1", "--project", tmp_path / "p")
    assert "2 ranks (gloo): rank 0 on cpu pid" in log.stdout


def test_ranks_that_cannot_be_are_refused_in_one_sentence_before_anything_is_written(
    studio_cli, model, tmp_path: Path
) -> None:
    quantize = studio_cli(
        "optimize", model[0], "quantize.dynamic", "--ranks", "2", "--project", tmp_path / "p", "--weights", model[1],
        "--trust",
    )  # fmt: skip
    assert quantize.returncode == 2
    assert quantize.stderr.strip().endswith(
        "quantize.dynamic does not train; data-parallel ranks are for steps that train "
        "(prune.structured with fine-tuning, distill)"
    )
    if not cuda_devices():
        gpus = _optimize(studio_cli, model, tmp_path / "p", "--gpus", "0,1")
        assert gpus.returncode == 2
        assert "there is no GPU 0 on this machine (it has none)" in gpus.stderr
    assert not (tmp_path / "p").exists()


@pytest.mark.skipif(bool(cuda_devices()), reason="this machine has a GPU: the default trains there")
def test_without_a_gpu_the_default_trains_on_the_cpu_says_so_and_measures_on_the_target(
    studio_cli, model, tmp_path: Path
) -> None:
    project = tmp_path / "p"
    assert studio_cli("target", "--project", project).returncode == 2  # no project yet: nothing made
    assert not project.exists()
    arch, weights, data = model
    made = studio_cli("import", arch, "--weights", weights, "--trust", "--project", project)
    assert made.returncode == 0, made.stderr
    assert studio_cli("target", "--project", project, "--json").json() == {"target_device": "cpu"}
    refused = studio_cli("target", "cuda:0", "--project", project)
    assert refused.returncode == 2
    assert refused.stderr.strip().endswith("there is no CUDA device 0 on this machine (it has none)")

    stepped = studio_cli(
        "optimize", "v1", "prune.structured", "--data", data, "--set", "finetune_epochs=1", "--project", project,
        "--json", timeout=300,
    )  # fmt: skip
    assert stepped.returncode == 0, stepped.stderr
    report = stepped.json()
    assert "No GPU found: trained on the CPU in fp32." in report["notes"]
    assert report["measurements"]["device"] == "cpu"  # the target, unchanged by the refusal
    jobs = studio_cli("jobs", "--project", project, "--json").json()["jobs"]
    assert ("optimize", "cpu") in [(j["kind"], j["device"]) for j in jobs]


@pytest.mark.gpu
def test_a_gpu_target_measures_every_step_on_that_gpu(studio_cli, model, tmp_path: Path) -> None:
    import onnxruntime

    if not cuda_devices() or "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("needs a CUDA GPU and onnxruntime-gpu")
    project = tmp_path / "p"
    arch, weights, data = model
    assert studio_cli("import", arch, "--weights", weights, "--trust", "--project", project).returncode == 0
    assert studio_cli("target", "cuda:0", "--project", project).returncode == 0
    stepped = studio_cli(
        "optimize", "v1", "quantize.fp16", "--data", data, "--project", project, "--json", timeout=300
    )
    assert stepped.returncode == 0, stepped.stderr
    assert stepped.json()["measurements"]["device"] == "cuda:0"
