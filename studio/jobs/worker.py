"""One technique step as plain data, and its execution inside a worker process.

The worker never sees the database: the step carries everything it needs (model files, dataset
spec, the project's versions a step may name) and hands back the output files' location plus
what the technique reported; the job manager, in the studio's process, records the version.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from studio.api import StudioError
from studio.core.benchmark import ModelRef
from studio.core.data import DatasetSpec

log = logging.getLogger(__name__)


class TechniqueJob(BaseModel):
    """One technique step, as plain data that crosses a process boundary."""

    model_config = ConfigDict(extra="forbid")

    technique: str
    params: dict[str, Any]
    model: ModelRef
    dataset: DatasetSpec | None = None
    device: str = "cpu"
    threads: int | None = None
    output_dir: str
    versions: dict[str, ModelRef] = {}  # "v3", "3" and names → files, for steps that name another version
    fidelity_floor: float | None = None  # the user's: a result below it is refused, not kept with a warning
    # Data-parallel ranks of a training step, one device each ("cpu", "cuda:1"; a GPU may be named
    # twice): a process per rank (studio.jobs.ranks). Empty: the step runs in the worker itself.
    ranks: list[str] = []


def execute(
    job: TechniqueJob,
    *,
    progress: Callable[[float, str], None] | None = None,
    cancel_requested: Callable[[], bool] | None = None,
    check_result: bool = True,
) -> dict:
    """Run the step in this process; return the output and the technique's report as plain data.

    ``check_result`` False skips the result gate: a data-parallel rank whose output is thrown away.
    """
    from studio.core.techniques import run_local

    def resolve(ref: str):
        target = job.versions.get(ref.strip()) or job.versions.get(ref.strip().lstrip("vV"))
        if target is None:
            raise StudioError(f"'{ref}' is neither a model file nor a version of this project")
        shapes = None if target.input_shapes is None else [tuple(s) for s in target.input_shapes]
        return target.files(), shapes, target.input_roles

    if job.threads:
        _limit_threads(job.threads)
    result = run_local(
        job.technique,
        job.model.files(),
        params=job.params,
        dataset=job.dataset,
        output_dir=Path(job.output_dir),
        device=job.device,
        threads=job.threads,
        trusted=job.model.trusted,
        input_shapes=None if job.model.input_shapes is None else [tuple(s) for s in job.model.input_shapes],
        input_roles=job.model.input_roles,
        progress=progress,
        cancel_requested=cancel_requested,
        resolve=resolve,
    )
    if not check_result:
        return {"main": str(result.output.main), "kind": result.output.kind}
    _log_output_files(Path(job.output_dir))
    if progress is not None:
        progress(1.0, "checking the result against its parent on held-out samples")
    gate = _gate(job, Path(result.output.main))
    notes = list(result.notes)
    if gate.collapsed:
        notes.append(
            f"Warning: this result follows its parent poorly: {gate.sentence()}, below {gate.floor:g}. "
            "Check it before you use it."
        )
    return {
        "main": str(result.output.main),
        "kind": result.output.kind,
        "details": {**result.details, "gate": gate.to_dict()},
        "notes": notes,
        "name": result.name,
        "effective_params": dict(result.effective_params),
    }


def _gate(job: TechniqueJob, output_main: Path):
    """The output against its parent (studio.core.gate), both run by ONNX Runtime on this worker's CPU."""
    from studio.core.gate import check_step_output
    from studio.core.models import collect_files
    from studio.core.runtime import open_runner
    from studio.core.trust import is_model_trusted
    from studio.jobs.logs import job_logger

    shapes = None if job.model.input_shapes is None else [tuple(s) for s in job.model.input_shapes]
    output_files = collect_files(output_main)
    roles = job.model.input_roles
    parent = open_runner(
        job.model.files(),
        threads=job.threads,
        trusted=job.model.trusted,
        input_shapes=shapes,
        input_roles=roles,
    )
    try:
        output = open_runner(
            output_files,
            threads=job.threads,
            trusted=is_model_trusted(output_files),
            input_shapes=shapes,
            input_roles=roles,
        )
        try:
            report = check_step_output(parent, output, job.dataset, floor=job.fidelity_floor)
        finally:
            output.close()
    finally:
        parent.close()
    job_logger.info("%s: %s", "COLLAPSED" if report.collapsed else "gate passed", report.sentence())
    return report


def _log_output_files(folder: Path) -> None:
    """The files the step made, with their sizes: the first thing to check when a result looks wrong."""
    from studio.jobs.logs import job_logger

    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        job_logger.info("wrote %s (%s)", path.relative_to(folder), size_text(path.stat().st_size))


def size_text(size: int) -> str:
    """A file size in the units people read, such as "41.2 kB"."""
    if size < 1000:
        return f"{size} bytes"
    value = size / 1000
    for unit in ("kB", "MB"):
        if value < 1000:
            return f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def _limit_threads(threads: int) -> None:
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
