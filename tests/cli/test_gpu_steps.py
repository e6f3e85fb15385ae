"""A technique step on a GPU from the command line: the step runs on the GPU named, and the
measurement that follows it on the CPU, in the same command (one pool holds both workers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.core.runtime import cuda_device_count

pytestmark = pytest.mark.gpu


@pytest.fixture
def demo(studio_cli, tmp_path: Path) -> Path:
    if cuda_device_count() == 0:
        pytest.skip("no CUDA GPU on this machine")
    project = tmp_path / "demo"
    made = studio_cli("demo", "--headless", "--project", project)
    assert made.returncode == 0, made.stderr
    return project


@pytest.mark.parametrize(
    ("technique", "settings"),
    [
        ("prune.structured", ["--set", "ratio=0.25", "--set", "finetune_epochs=1"]),
        ("distill", ["--set", "epochs=1"]),
    ],
)
def test_a_step_on_cuda_0_runs_there_and_is_measured_on_the_cpu(
    studio_cli, demo: Path, technique: str, settings: list[str]
) -> None:
    result = studio_cli(
        "optimize", "v1", technique, *settings, "--data", "digits", "--device", "cuda:0",
        "--project", demo, "--json", timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.json()["measurements"]["device"] == "cpu"

    jobs = studio_cli("jobs", "--project", demo, "--json").json()["jobs"]
    devices = {(j["kind"], j["state"], j["device"]) for j in jobs}
    assert ("optimize", "succeeded", "cuda:0") in devices
    assert ("measure", "succeeded", "cpu") in devices
