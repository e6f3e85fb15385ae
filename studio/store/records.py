"""What the store hands out: frozen, plain values that outlive the session that read them.

Callers (the window, the command line, jobs) never see ORM rows, so nothing they do can write
to the database by accident or fail later with a detached-instance error. ``to_dict()`` gives
the JSON the command line prints with ``--json``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from studio.core.models import TensorSpec

JOB_KINDS = ("optimize", "measure", "export")
JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
FINISHED_JOB_STATES = ("succeeded", "failed", "cancelled", "interrupted")
DATASET_KINDS = ("digits", "npz", "folder", "csv")


def iso_utc(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with an explicit offset, readable by ``datetime.fromisoformat`` everywhere."""
    return None if value is None else value.astimezone(timezone.utc).isoformat()


def _json_ready(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, TensorSpec):
        return value.to_dict()
    if isinstance(value, (tuple, list)):
        return [_json_ready(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    return value


class _Record:
    def to_dict(self) -> dict[str, Any]:
        return {f.name: _json_ready(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class ProjectRecord(_Record):
    name: str
    created_at: datetime
    app_version: str
    target_device: str = "cpu"  # where the models will run: every step's measurement runs there


@dataclass(frozen=True)
class ModelVersion(_Record):
    """One model in the project: its files (by artifact hash), what it is, and where it came from."""

    id: int
    name: str
    parent_id: int | None
    format: str  # a ModelFormat value
    artifact: str  # sha256 of the artifact folder
    main_file: str
    weights_file: str | None
    files: tuple[str, ...]
    size_bytes: int
    params: int | None
    macs: int | None
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    technique: str | None
    technique_params: dict[str, Any]
    source_path: str | None
    source_sha256: str | None
    trusted: bool
    created_at: datetime
    notes: str = ""
    details: dict[str, Any] = dataclasses.field(default_factory=dict)  # what the technique reported

    @property
    def ref(self) -> str:
        """How a user names this version on the command line."""
        return f"v{self.id}"


@dataclass(frozen=True)
class DatasetRecord(_Record):
    id: int
    name: str
    kind: str
    spec: dict[str, Any]
    fingerprint: str
    samples: int
    created_at: datetime


@dataclass(frozen=True)
class Measurement(_Record):
    """One row of truth: a version on one dataset, device, runtime, batch and thread count."""

    id: int
    version_id: int
    dataset_id: int | None
    reference_version_id: int | None
    job_id: int | None
    device: str
    runtime: str
    provider: str | None
    batch: int
    threads: int | None
    accuracy: dict[str, Any] | None
    fidelity: dict[str, Any] | None
    latency_p50_ms: float | None
    latency_p90_ms: float | None
    latency_p99_ms: float | None
    latency_mean_ms: float | None
    latency_std_ms: float | None
    throughput_per_s: float | None
    runs: int | None
    samples: int | None
    size_bytes: int | None
    params: int | None
    environment: dict[str, Any]
    # The median's 95 % interval, how busy the machine was ("noise"), and against a reference
    # the paired speed-up with its interval ("paired"); {} for measurements from before these.
    timing: dict[str, Any]
    created_at: datetime
    # Joules per inference from the device's energy counter, and the peak GPU memory at the
    # measured batch; None (never 0) where not measured, with the reason in ``execution``.
    energy_per_inference_j: float | None = None
    peak_memory_bytes: int | None = None
    # How it ran: "energy" (source, window) or why missing, "peak_memory" likewise, "placement"
    # (nodes per ONNX Runtime provider, a sentence when the CPU ran some), "mode" (torch), "sweep".
    execution: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class JobRecord(_Record):
    id: int
    kind: str
    technique: str | None
    params: dict[str, Any]
    state: str
    input_version_id: int | None
    output_version_id: int | None
    dataset_id: int | None
    device: str | None
    progress: float
    message: str
    error: str | None
    log_path: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested: bool = False  # asked from another process; the owner's manager acts on it
    # The process that records the outcome (not the worker): a job whose owner is gone is
    # ``interrupted`` by whoever opens the project next. The heartbeat is refreshed while it runs.
    owner_host: str | None = None
    owner_pid: int | None = None
    owner_started: str | None = None
    owner_heartbeat: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_JOB_STATES


@dataclass(frozen=True)
class VersionUsers(_Record):
    """Everything in the database that points at one version: what a delete must refuse or clear.

    Lineage, another version's measurement compared against it, and unfinished jobs need the
    version and refuse its deletion; its own measurements and finished jobs are what it takes along.
    """

    version_id: int
    children: tuple[int, ...]  # versions made from it
    compared_by: tuple[int, ...]  # versions with a measurement that used it as reference
    active_jobs: tuple[tuple[int, str], ...]  # (job id, state) of queued or running jobs that use it
    measurements: int  # its own, removed with it
    finished_jobs: int  # kept as history, their link to it cleared
    same_artifact: tuple[int, ...]  # other versions stored in the same artifact folder

    def refusal(self) -> str | None:
        """Why the version cannot be deleted, in one sentence; None when it can."""
        ref = f"v{self.version_id}"
        if self.children:
            return f"{ref} has versions made from it ({_refs(self.children)}): delete those first"
        if self.compared_by:
            return (
                f"measurements of {_refs(self.compared_by)} were compared against {ref}: "
                "delete those versions first"
            )
        if self.active_jobs:
            jobs = ", ".join(f"{job_id} ({state})" for job_id, state in self.active_jobs)
            one = len(self.active_jobs) == 1
            return (
                f"{ref} is in use by job{'' if one else 's'} {jobs}: let "
                f"{'it' if one else 'them'} end or cancel {'it' if one else 'them'} first"
            )
        return None


def _refs(ids: tuple[int, ...]) -> str:
    return ", ".join(f"v{version_id}" for version_id in ids)
