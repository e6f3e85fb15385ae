"""The studio's own job functions, run in a worker: ``f(progress, cancel_requested, **kwargs) -> dict``.

A job names its function as ``module:function``; any importable module can provide one, in the
same shape as these. Heavy imports happen inside the functions, after the worker has bound its
device.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from studio.jobs.runner import WORKER_DEVICE_ENV

Progress = Callable[[float, str], None]
CancelRequested = Callable[[], bool]


def technique_step(progress: Progress, cancel_requested: CancelRequested, job: dict) -> dict:
    """One technique step (``studio.jobs.worker.TechniqueJob`` as JSON)."""
    from studio.jobs.worker import TechniqueJob, execute

    if len(job.get("ranks") or []) > 1:  # data-parallel: a process per rank, watched from here
        from studio.jobs.ranks import run_ranks

        return run_ranks(TechniqueJob.model_validate(job), progress, cancel_requested)
    step = TechniqueJob.model_validate({**job, "device": local_device(job.get("device", "cpu"))})
    return execute(step, progress=progress, cancel_requested=cancel_requested)


def measurement(progress: Progress, cancel_requested: CancelRequested, request: dict) -> dict:
    """One measurement (``studio.core.benchmark.MeasurementRequest`` as JSON)."""
    from studio.core.benchmark import MeasurementRequest, measure_here

    settings = dict(request.get("settings") or {})
    if "device" in settings:
        settings["device"] = local_device(settings["device"])
    progress(0.0, "measuring")
    result = measure_here(MeasurementRequest.model_validate({**request, "settings": settings}))
    progress(1.0, "measured")
    return result


def local_device(device: str) -> str:
    """The name this worker knows its GPU by: with ``CUDA_VISIBLE_DEVICES=N`` it is always cuda:0."""
    bound = os.environ.get(WORKER_DEVICE_ENV, "")
    if device.startswith("cuda") and bound.startswith("cuda:"):
        return "cuda:0"
    return device
