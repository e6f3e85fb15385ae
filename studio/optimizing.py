"""One optimization step on a project: refuse bad requests early, run the step away from the
database, record its output as a child version, and measure it beside its parent.

The order is the point: every check that needs no work happens before a process starts or a
file is written; the step writes into a staging folder that is thrown away unless the new
version is recorded; and the parent is measured with the same settings so a before/after pair
always exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.api import Params
from studio.core.benchmark import BenchmarkSettings
from studio.core.data import DatasetSpec, bind
from studio.core.files import staging_dir
from studio.core.models import ModelFormat
from studio.core.techniques import check_fits, get_technique, parse_params
from studio.store import Measurement, ModelVersion

if TYPE_CHECKING:
    from studio.background import BackgroundJobs
    from studio.core.recipes import Recipe
    from studio.jobs.worker import TechniqueJob
    from studio.project import Project

# Measurements made after each step: batch 1 on one thread compares versions most fairly on a
# desktop; `studio bench` measures any other setting on demand.
AUTO_MEASURE = BenchmarkSettings(runtime="onnxruntime", device="cpu", batch=1, threads=1, min_seconds=1.0)


@dataclass(frozen=True)
class StepOutcome:
    version: ModelVersion
    measurement: Measurement | None
    parent_measurement: Measurement | None
    notes: list[str]


@dataclass(frozen=True)
class PreparedStep:
    """A step that passed every check that needs no work."""

    technique: str
    params: Params
    version: ModelVersion
    dataset: DatasetSpec | None


def check_step(
    technique: str,
    params: dict[str, Any] | Params | None,
    *,
    format: str,
    inputs: list,
    dataset: DatasetSpec | None,
) -> tuple[str, Params]:
    """Every refusal that needs no work: unknown technique, bad parameters, a format the technique
    does not take, a dataset that is missing, unlabelled where labels are needed, or does not fit."""
    tech = get_technique(technique)
    parsed = parse_params(tech, params)
    kind = "onnx" if ModelFormat(format) is ModelFormat.ONNX else "torch"
    labels = False
    if dataset is not None:
        data = dataset.load()
        bind(data, list(inputs))
        labels = data.labels is not None
    check_fits(tech, kind, dataset is not None, labels)
    return tech.name, parsed


def prepare_step(
    project: Project,
    version: ModelVersion,
    technique: str,
    params: dict[str, Any] | Params | None,
    dataset: DatasetSpec | None,
) -> PreparedStep:
    name, parsed = check_step(
        technique, params, format=version.format, inputs=list(version.inputs), dataset=dataset
    )
    return PreparedStep(name, parsed, version, dataset)


def run_recipe(
    project: Project,
    recipe: Recipe,
    version: ModelVersion,
    *,
    data: str | None = None,
    device: str = "cpu",
    threads: int | None = None,
    jobs: BackgroundJobs | None = None,
    on_progress: Callable[[float, str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> Iterator[StepOutcome]:
    """Run the steps in order, each on the version the one before made."""
    specs = [_step_dataset(step.data or data or recipe.data) for step in recipe.steps]
    for spec in {s for s in specs if s is not None}:
        spec.load()  # a missing dataset is refused before the first step runs
    first = recipe.steps[0]
    prepare_step(project, version, first.technique, first.params, specs[0])
    total = len(recipe.steps)
    for index, (step, spec) in enumerate(zip(recipe.steps, specs, strict=True)):
        prepared = prepare_step(project, version, step.technique, step.params, spec)

        def scaled(fraction: float, message: str, i: int = index, name: str = prepared.technique) -> None:
            if on_progress is not None:
                on_progress((i + fraction) / total, f"step {i + 1}/{total} {name}: {message}")

        outcome = run_step(
            project,
            prepared,
            name=step.name,
            device=device,
            threads=threads,
            on_progress=scaled,
            should_cancel=should_cancel,
        )
        yield outcome
        version = outcome.version


def _step_dataset(source: str | None) -> DatasetSpec | None:
    return None if not source else DatasetSpec(source=str(source))


def run_step(
    project: Project,
    step: PreparedStep,
    *,
    jobs: BackgroundJobs | None = None,
    name: str | None = None,
    device: str = "cpu",
    threads: int | None = None,
    measure: BenchmarkSettings | None = AUTO_MEASURE,
    on_progress: Callable[[float, str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> StepOutcome:
    """Run the step as a job; its output becomes a version in the manager's process, never the worker's."""
    from studio.background import BackgroundJobs
    from studio.jobs.spec import technique_spec

    own = jobs is None
    jobs = jobs or BackgroundJobs(project, device=device)
    version = step.version
    made: dict[str, Any] = {}

    def record(job: Any, result: dict) -> None:
        made["version"] = record_step_output(
            project, version, step.technique, step.params.model_dump(mode="json"), job.id, result, name=name
        )

    try:
        with staging_dir(project.artifacts_dir) as out:
            job = technique_job(project, step, output_dir=out, device=device, threads=threads)
            result = jobs.run(
                technique_spec(job, input_version_id=version.id),
                on_done=record,
                on_progress=on_progress,
                should_cancel=should_cancel,
            )
        new = made["version"]
        after = before = None
        if measure is not None:
            after = project.measure(new, dataset=step.dataset, settings=measure, jobs=jobs)
            before = comparable_measurement(project, version, after) or project.measure(
                version, dataset=step.dataset, settings=measure, jobs=jobs
            )
    finally:
        if own:
            jobs.close()
    return StepOutcome(new, after, before, list(result.get("notes") or []))


def comparable_measurement(project: Project, version: ModelVersion, like: Measurement) -> Measurement | None:
    """The latest measurement of ``version`` taken the way ``like`` was (device, runtime, batch,
    threads, dataset), so before/after figures compare like with like."""
    for m in reversed(project.store.list_measurements(version.id)):
        if (m.device, m.runtime, m.batch, m.threads, m.dataset_id) == (
            like.device,
            like.runtime,
            like.batch,
            like.threads,
            like.dataset_id,
        ):
            return m
    return None


def technique_job(
    project: Project, step: PreparedStep, *, output_dir: Path, device: str = "cpu", threads: int | None = None
) -> TechniqueJob:
    """The step as plain data for a worker: the model's files, the dataset, and every version of
    the project by "v3", "3" and name, for techniques that name another one (a distillation student)."""
    from studio.jobs.worker import TechniqueJob
    from studio.measurements import model_ref

    refs = {}
    for v in project.store.list_versions():
        ref = model_ref(project.model_files(v), v)
        refs[f"v{v.id}"] = refs[str(v.id)] = ref
        refs.setdefault(v.name, ref)
    return TechniqueJob(
        technique=step.technique,
        params=step.params.model_dump(mode="json"),
        model=model_ref(project.model_files(step.version), step.version),
        dataset=step.dataset,
        device=device,
        threads=threads,
        output_dir=str(output_dir),
        versions=refs,
    )


def record_step_output(
    project: Project,
    parent: ModelVersion,
    technique: str,
    params: dict[str, Any],
    job_id: int,
    result: dict,
    *,
    name: str | None = None,
) -> ModelVersion:
    """Record a finished step's output as a child version, in the studio's process (never a worker's)."""
    from studio.versions import check_model_file

    checked = check_model_file(Path(result["main"]), trust=False)
    version = project.add_checked_model(
        checked,
        name=name or result.get("name") or f"{parent.name}+{technique}",
        parent=parent,
        technique=technique,
        technique_params=params,
        notes="\n".join(result.get("notes") or []),
        details=result.get("details") or {},
    )
    project.store.update_job(job_id, output_version_id=version.id)
    return version


def outcome_report(project: Project, outcome: StepOutcome) -> dict:
    """What `studio optimize --json` prints: the new version, its path, its figures and the ratios."""
    v = outcome.version
    after = None if outcome.measurement is None else project.measurement_report(outcome.measurement)
    before = (
        None if outcome.parent_measurement is None else project.measurement_report(outcome.parent_measurement)
    )
    return {
        "id": v.id,
        "name": v.name,
        "parent_id": v.parent_id,
        "technique": v.technique,
        "params": v.technique_params,
        "path": str(project.version_path(v)),
        "format": v.format,
        "size_bytes": v.size_bytes,
        "params_count": v.params,
        "macs": v.macs,
        "notes": outcome.notes,
        "details": v.details,
        "measurements": after,
        "parent_measurements": before,
        "ratios": None if after is None or before is None else ratios(before, after),
    }


def ratios(before: dict, after: dict) -> dict:
    """How much better the new version is: >1 means smaller / faster; accuracy as a point change."""

    def div(a: float | None, b: float | None) -> float | None:
        return None if not a or not b else a / b

    out = {
        "latency_p50": div(before["latency_ms"]["p50"], after["latency_ms"]["p50"]),
        "size": div(before["size_bytes"], after["size_bytes"]),
        "params": div(before["params"], after["params"]),
    }
    b_acc, a_acc = (before.get("accuracy") or {}).get("top1"), (after.get("accuracy") or {}).get("top1")
    out["accuracy_points"] = None if b_acc is None or a_acc is None else 100 * (a_acc - b_acc)
    return out
