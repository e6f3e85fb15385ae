"""What a step is, before and after it runs: the checks that need no work, the job a worker gets,
the version its output becomes, and the figures reported for it.

The order is the point: every check that needs no work happens before a process starts or a
file is written; the step writes into a staging folder that is thrown away unless the new
version is recorded (in the studio's process, never a worker's); and the parent is measured
with the same settings when it has no such figures, so a before/after pair always exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.api import Params, StudioError
from studio.core.benchmark import BenchmarkSettings
from studio.core.data import DatasetSpec, bind
from studio.core.models import ModelFormat
from studio.core.techniques import check_fits, get_technique, parse_params
from studio.project import Project
from studio.store import Measurement, ModelVersion, Store

if TYPE_CHECKING:
    from studio.core.recipes import Recipe
    from studio.jobs.worker import TechniqueJob

# Measurements made after each step: batch 1 on one thread compares versions most fairly on a
# desktop; `studio bench` measures any other setting on demand. The child is timed against its
# parent in rounds until the speed-up is known to ±3 % (studio.core.timing): half a second at
# least, 15 s at most.
AUTO_MEASURE = BenchmarkSettings(
    runtime="onnxruntime", device="cpu", batch=1, threads=1, min_seconds=0.5, max_seconds=15.0
)


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
    version: ModelVersion,
    technique: str,
    params: dict[str, Any] | Params | None,
    dataset: DatasetSpec | None,
) -> PreparedStep:
    """The step, checked against the version it starts from."""
    name, parsed = check_step(
        technique, params, format=version.format, inputs=list(version.inputs), dataset=dataset
    )
    return PreparedStep(name, parsed, version, dataset)


@dataclass(frozen=True)
class PlannedStep:
    """One step of a recipe, waiting for the version the step before makes."""

    technique: str
    params: dict[str, Any]
    name: str | None
    dataset: DatasetSpec | None


def plan_recipe(recipe: Recipe, data: str | None = None) -> list[PlannedStep]:
    """The recipe's steps with their datasets (the step's own, else ``data``, else the recipe's);
    a dataset that cannot be read is refused before the first step runs."""
    planned = []
    for step in recipe.steps:
        source = step.data or data or recipe.data
        planned.append(
            PlannedStep(
                step.technique,
                step.params.model_dump(mode="json"),
                step.name,
                DatasetSpec(source=str(source)) if source else None,
            )
        )
    for spec in {s.dataset for s in planned if s.dataset is not None}:
        spec.load()
    return planned


def recipe_of(steps: Sequence[Any], *, data: str | None = None) -> Recipe:
    """A recipe from editor rows (objects with ``technique``, ``params`` and ``name``), checked by
    the same parser as a recipe file: each technique known, its parameters valid, and each step
    accepting what the one before produces."""
    import yaml

    from studio.core.recipes import parse_recipe

    if not steps:
        raise StudioError("the recipe has no steps")
    rows = [
        {"technique": s.technique, "params": dict(s.params), **({"name": s.name} if s.name else {})}
        for s in steps
    ]
    return parse_recipe(yaml.safe_dump({**({"data": data} if data else {}), "steps": rows}, sort_keys=False))


def comparable_measurement(
    store: Store, version: ModelVersion, settings: BenchmarkSettings, dataset: DatasetSpec | None
) -> Measurement | None:
    """The latest measurement of ``version`` taken the way ``settings`` and ``dataset`` would take
    it (device, runtime, batch, threads, the same dataset), so before/after figures compare like
    with like."""
    wanted_dataset = None if dataset is None else dataset.model_dump(mode="json")
    for m in reversed(store.list_measurements(version.id)):
        if (m.device, m.runtime, m.batch, m.threads) != (
            settings.device,
            settings.runtime,
            settings.batch,
            settings.threads,
        ):
            continue
        used = None if m.dataset_id is None else store.get_dataset(m.dataset_id).spec
        if used == wanted_dataset:
            return m
    return None


def technique_job(
    project: Project,
    step: PreparedStep,
    *,
    output_dir: Path,
    device: str = "cpu",
    ranks: tuple[str, ...] = (),
    threads: int | None = None,
    fidelity_floor: float | None = None,
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
        ranks=list(ranks),
        threads=threads,
        output_dir=str(output_dir),
        versions=refs,
        fidelity_floor=fidelity_floor,
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
    from studio.core.input_roles import roles_of
    from studio.versions import check_model_file

    checked = check_model_file(Path(result["main"]), trust=False, input_roles=roles_of(parent.inputs))
    version = project.add_checked_model(
        checked,
        name=name or result.get("name") or f"{parent.name}+{technique}",
        parent=parent,
        technique=technique,
        technique_params={**params, **(result.get("effective_params") or {})},  # what ran, not "auto"
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
        "gate": v.details.get("gate"),
        "details": v.details,
        "measurements": after,
        "parent_measurements": before,
        "ratios": None if after is None or before is None else ratios(before, after),
    }


def ratios(before: dict, after: dict) -> dict:
    """How much better the new version is: >1 means smaller / faster; accuracy as a point change.

    The speed-up is the paired one when ``after`` was timed against ``before`` in the same job
    (studio.core.timing), with its 95 % interval and verdict; else a plain ratio of two p50s.
    """

    def div(a: float | None, b: float | None) -> float | None:
        return None if not a or not b else a / b

    paired = (after.get("timing") or {}).get("paired")
    if paired is not None and after.get("reference_version_id") == before["version"]["id"]:
        speed = {key: paired[key] for key in ("speedup", "ci95", "verdict", "rounds")}
    else:  # two separate timings: a ratio with no interval, and no verdict on it
        speed = {"speedup": div(before["latency_ms"]["p50"], after["latency_ms"]["p50"])}
    out = {
        "latency_p50": speed["speedup"],
        "speed": speed,
        "size": div(before["size_bytes"], after["size_bytes"]),
        "params": div(before["params"], after["params"]),
    }
    b_acc, a_acc = (before.get("accuracy") or {}).get("top1"), (after.get("accuracy") or {}).get("top1")
    out["accuracy_points"] = None if b_acc is None or a_acc is None else 100 * (a_acc - b_acc)
    return out
