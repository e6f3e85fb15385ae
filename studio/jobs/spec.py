"""A job as plain data: which function to run, with what, where, for how long.

A spec crosses process and machine boundaries (a spawned worker, a Ray cluster), so it holds
only a dotted name for the function and JSON-ready arguments, never callables or open objects.
The record fields (technique, params, versions) are what the project remembers of the job.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from studio.core.benchmark import MeasurementRequest
    from studio.jobs.worker import TechniqueJob

_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
_DEVICE = re.compile(r"cpu|cuda(:\d+)?")


@dataclass(frozen=True)
class JobSpec:
    """One unit of background work.

    ``target`` names ``f(progress, cancel_requested, **kwargs) -> dict`` as "package.module:function".
    ``device`` pins the job to that device's worker ("cpu", "cuda:1"), "cuda" to any GPU worker;
    None lets any worker take it.
    ``output_dir`` names the folder the job writes into, so that a remote worker can send it back.
    ``holds`` names the other GPUs the job's data-parallel ranks train on: their workers take no
    other job while it runs.
    """

    kind: str
    target: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    device: str | None = None
    timeout_s: float | None = None
    technique: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    input_version_id: int | None = None
    dataset_id: int | None = None
    output_dir: str | None = None
    holds: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _TARGET.fullmatch(self.target):
            raise ValueError(f"a job target is 'package.module:function', not {self.target!r}")
        if self.device is not None and not _DEVICE.fullmatch(self.device):
            raise ValueError(f"a job device is 'cpu', 'cuda' or 'cuda:N', not {self.device!r}")
        for held in self.holds:
            if not _DEVICE.fullmatch(held) or ":" not in held:
                raise ValueError(f"a job holds GPUs as 'cuda:N', not {held!r}")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ValueError(f"a job timeout must be positive, not {self.timeout_s!r}")
        try:
            json.dumps(self.kwargs)
        except (TypeError, ValueError) as error:
            raise ValueError(f"job arguments must be JSON-ready: {error}") from error


def technique_spec(
    job: TechniqueJob,
    *,
    input_version_id: int | None = None,
    dataset_id: int | None = None,
    timeout_s: float | None = None,
) -> JobSpec:
    """The spec of one technique step, run by ``studio.jobs.targets:technique_step``."""
    return JobSpec(
        kind="optimize",
        target="studio.jobs.targets:technique_step",
        kwargs={"job": job.model_dump(mode="json")},
        device=job.device,
        timeout_s=timeout_s,
        technique=job.technique,
        params=dict(job.params),
        input_version_id=input_version_id,
        dataset_id=dataset_id,
        output_dir=job.output_dir,
        holds=tuple(sorted({d for d in job.ranks if d.startswith("cuda:")} - {job.device})),
    )


def measurement_spec(
    request: MeasurementRequest,
    *,
    input_version_id: int | None = None,
    dataset_id: int | None = None,
    device: str | None = None,
    timeout_s: float | None = None,
) -> JobSpec:
    """The spec of one measurement, run by ``studio.jobs.targets:measurement``."""
    return JobSpec(
        kind="measure",
        target="studio.jobs.targets:measurement",
        kwargs={"request": request.model_dump(mode="json")},
        device=device or request.settings.device,
        timeout_s=timeout_s,
        params=dataclasses.asdict(request.settings),
        input_version_id=input_version_id,
        dataset_id=dataset_id,
    )
