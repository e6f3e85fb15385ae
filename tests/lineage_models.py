"""A project with a small lineage of real models, for the tests that rename and delete versions.

Each model is a two-layer torch network exported to ONNX with its own seed, so every version has
its own artifact folder: baseline → pruned → int8, and a second imported root, other.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from studio.project import Project
from studio.store import ModelVersion
from studio.versions import check_model_file

NAMES = ("baseline", "pruned", "int8", "other")


def linear_onnx(path: Path, seed: int) -> Path:
    import torch

    torch.manual_seed(seed)
    module = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.randn(1, 16),),
            str(path),
            dynamo=False,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
        )
    return path


def model_files(folder: Path) -> dict[str, Path]:
    """One ONNX file per version name, each with different weights."""
    return {name: linear_onnx(folder / f"{name}.onnx", seed) for seed, name in enumerate(NAMES)}


@dataclass(frozen=True)
class Lineage:
    baseline: ModelVersion
    pruned: ModelVersion
    int8: ModelVersion
    other: ModelVersion


def make_lineage(project: Project, files: dict[str, Path]) -> Lineage:
    baseline = project.import_model(files["baseline"], name="baseline")
    pruned = project.add_checked_model(
        check_model_file(files["pruned"]), name="pruned", parent=baseline, technique="prune.structured"
    )
    int8 = project.add_checked_model(
        check_model_file(files["int8"]), name="int8", parent=pruned, technique="quantize.dynamic"
    )
    other = project.import_model(files["other"], name="other")
    return Lineage(baseline, pruned, int8, other)


def measure(project: Project, version: ModelVersion, reference: ModelVersion | None = None) -> int:
    """Record a timing of ``version`` as a measurement job would; returns its id."""
    return project.store.add_measurement(
        version_id=version.id,
        device="cpu",
        runtime="onnxruntime",
        provider="CPUExecutionProvider",
        reference_version_id=None if reference is None else reference.id,
        batch=1,
        threads=1,
        latency_p50_ms=0.050,
        latency_p90_ms=0.060,
        latency_p99_ms=0.080,
        latency_mean_ms=0.052,
        latency_std_ms=0.004,
        throughput_per_s=19_000.0,
        runs=200,
        size_bytes=version.size_bytes,
        params=version.params,
    ).id


def add_job(
    project: Project, *, state: str = "queued", output_version_id: int | None = None, **fields
) -> int:
    """A job owned by this process, so that opening the project elsewhere leaves it as it is."""
    from studio.jobs.liveness import this_process

    owner = this_process()
    job = project.store.add_job(
        kind="optimize",
        technique="quantize.dynamic",
        owner_host=owner.host,
        owner_pid=owner.pid,
        owner_started=owner.started,
        **fields,
    )
    changes = {} if state == "queued" else {"state": state}
    if output_version_id is not None:
        changes["output_version_id"] = output_version_id
    if changes:
        project.store.update_job(job.id, **changes)
    return job.id


def dead_pid() -> int:
    """The id of a process that has ended, for a leftover "left by a crash"."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid
