"""Measuring a stored version and recording the result: one row of truth per measurement.

The measurement itself runs in a separate process (studio.core.benchmark.measure); this module
turns versions into requests and results into rows, and rows into the report users read.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from studio.core.benchmark import BenchmarkSettings, MeasurementRequest, ModelRef
from studio.core.data import DatasetSpec
from studio.core.input_roles import roles_of
from studio.core.models import ModelFiles
from studio.core.trust import is_model_trusted
from studio.store import DatasetRecord, Measurement, ModelVersion, Store
from studio.tables import NOT_MEASURED
from studio.versions import input_shapes_of


def model_ref(files: ModelFiles, version: ModelVersion) -> ModelRef:
    return ModelRef.of(
        files,
        trusted=is_model_trusted(files),
        input_shapes=input_shapes_of(version),
        input_roles=roles_of(version.inputs),
    )


def measurement_request(
    model: ModelRef,
    *,
    dataset: DatasetSpec | None,
    settings: BenchmarkSettings,
    reference: ModelRef | None = None,
) -> MeasurementRequest:
    return MeasurementRequest(model=model, dataset=dataset, reference=reference, settings=settings.validate())


def record_measurement(
    store: Store,
    version: ModelVersion,
    result: dict,
    *,
    dataset: DatasetSpec | None,
    reference: ModelVersion | None = None,
    job_id: int | None = None,
) -> Measurement:
    """Store one result of ``measure`` (a plain dict from the measuring process)."""
    dataset_row = dataset_record(store, dataset, result) if dataset is not None else None
    latency = result["latency_ms"]
    execution = result.get("execution") or {}
    return store.add_measurement(
        version_id=version.id,
        device=result["device"],
        runtime=result["runtime"],
        provider=result.get("provider"),
        batch=result["batch"],
        threads=result.get("threads"),
        dataset_id=None if dataset_row is None else dataset_row.id,
        reference_version_id=None if reference is None else reference.id,
        job_id=job_id,
        accuracy=result.get("accuracy"),
        fidelity=result.get("fidelity"),
        latency_p50_ms=latency["p50"],
        latency_p90_ms=latency["p90"],
        latency_p99_ms=latency["p99"],
        latency_mean_ms=latency["mean"],
        latency_std_ms=latency["std"],
        throughput_per_s=result["throughput_per_s"],
        runs=result.get("runs"),
        samples=result.get("samples"),
        size_bytes=result.get("size_bytes"),
        params=result.get("params"),
        environment=result.get("environment") or {},
        timing=result.get("timing") or {},
        energy_per_inference_j=(execution.get("energy") or {}).get("joules_per_inference"),
        peak_memory_bytes=(execution.get("peak_memory") or {}).get("bytes"),
        execution=execution,
    )


def dataset_record(store: Store, spec: DatasetSpec, result: dict) -> DatasetRecord:
    """The project's record of the dataset a result used, made on first use."""
    fingerprint = result.get("dataset_fingerprint") or ""
    existing = store.find_dataset_by_fingerprint(fingerprint) if fingerprint else None
    if existing is not None:
        return existing
    base = dataset_name(spec)
    taken = {d.name for d in store.list_datasets()}
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    samples = int(result.get("dataset_samples") or result.get("samples") or 0)
    return store.add_dataset(
        name=name,
        kind=dataset_kind(spec),
        spec=spec.model_dump(mode="json"),
        fingerprint=fingerprint,
        samples=samples,
    )


def dataset_kind(spec: DatasetSpec) -> str:
    if spec.source == "digits":
        return "digits"
    path = Path(spec.source)
    if path.is_dir():
        return "folder"
    return "csv" if path.suffix.lower() == ".csv" else "npz"


def dataset_name(spec: DatasetSpec) -> str:
    return "digits" if spec.source == "digits" else Path(spec.source).stem or "dataset"


def measurement_report(m: Measurement, version: ModelVersion, dataset: DatasetRecord | None) -> dict:
    """The JSON shape `studio bench --json` prints: latency grouped, names as users read them."""
    return {
        "id": m.id,
        "version": {"id": version.id, "name": version.name},
        "dataset": None if dataset is None else dataset.name,
        "reference_version_id": m.reference_version_id,
        "accuracy": m.accuracy,
        "fidelity": m.fidelity,
        "latency_ms": {
            "p50": m.latency_p50_ms,
            "p90": m.latency_p90_ms,
            "p99": m.latency_p99_ms,
            "mean": m.latency_mean_ms,
            "std": m.latency_std_ms,
        },
        "throughput_per_s": m.throughput_per_s,
        "size_bytes": m.size_bytes,
        "params": m.params,
        "device": m.device,
        "runtime": m.runtime,
        "provider": m.provider,
        "batch": m.batch,
        "threads": m.threads,
        "runs": m.runs,
        "samples": m.samples,
        "energy_per_inference_j": m.energy_per_inference_j,
        "peak_memory_bytes": m.peak_memory_bytes,
        "execution": m.execution,
        "environment": m.environment,
        "timing": m.timing,
        "created_at": m.to_dict()["created_at"],
    }


def speeds_against_parents(
    versions: Iterable[ModelVersion], measurements: Iterable[Measurement]
) -> dict[int, dict]:
    """Each version's latest paired speed-up over its parent (timed in one job, in alternating
    rounds: studio.core.timing), by version id; versions never timed against it are left out.
    One pass over the measurements, whatever the number of versions."""
    parents = {v.id: v.parent_id for v in versions if v.parent_id is not None}
    found: dict[int, dict] = {}
    for m in measurements:
        paired = (m.timing or {}).get("paired")
        if paired and m.version_id in parents and m.reference_version_id == parents[m.version_id]:
            found[m.version_id] = {key: paired.get(key) for key in ("speedup", "ci95", "verdict", "rounds")}
    return found


def noise_of(m: Measurement | None) -> str | None:
    """Why a measurement's timing is not to be trusted as it stands ("noisy: …"), or None."""
    return None if m is None else (m.timing or {}).get("noise")


def layer_times_of(version: ModelVersion, measurements: Iterable[Measurement]) -> dict | None:
    """The per-node times of ``version``'s latest measurement that has them (`bench --layers`):
    ``{"measurement": id, "nodes": {name: {"op", "ms", "share"}}}``, or None."""
    found = None
    for m in measurements:
        rows = (m.timing or {}).get("layers")
        if m.version_id == version.id and rows:
            found = {"measurement": m.id, "nodes": {row["name"]: row for row in rows}}
    return found


def energy_missing(m: Measurement) -> str | None:
    """Why ``m`` has no energy per inference (a few words), or None when it has one. Measurements
    from before energy was measured say so rather than claim the machine has no counter."""
    if m.energy_per_inference_j is not None:
        return None
    return (m.execution.get("energy") or {}).get("missing") or NOT_MEASURED


def sweeps_by_version(measurements: Iterable[Measurement]) -> dict[int, list[Measurement]]:
    """Each version's latest batch sweep (`studio bench --sweep`), smallest batch first, by version
    id; versions never swept are left out. One pass over the measurements (oldest first)."""
    by_label: dict[str, list[Measurement]] = {}
    for m in measurements:
        label = (m.execution or {}).get("sweep")
        if label:
            by_label.setdefault(label, []).append(m)
    latest: dict[int, list[Measurement]] = {}
    for steps in by_label.values():  # in the order each sweep began: a later one replaces an earlier
        latest[steps[0].version_id] = sorted(steps, key=lambda m: m.batch)
    return latest
