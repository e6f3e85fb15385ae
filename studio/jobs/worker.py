"""Running one technique step away from the caller: in a spawned process that never sees the database.

The caller hands over everything the step needs as plain data (model files, dataset spec, the
project's versions a step may name), receives progress messages while it runs, may ask it to
stop, and gets back the output files' location plus what the technique reported. A step that
fails or is cancelled leaves nothing the caller would take for a result.
"""

from __future__ import annotations

import logging
import multiprocessing
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from studio.api import Cancelled, StudioError
from studio.core.benchmark import ModelRef
from studio.core.data import DatasetSpec

log = logging.getLogger(__name__)

CANCEL_GRACE_SECONDS = 5.0


class StepCancelled(StudioError):
    """The user cancelled the step; nothing was kept."""


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


def execute(
    job: TechniqueJob,
    *,
    progress: Callable[[float, str], None] | None = None,
    cancel_requested: Callable[[], bool] | None = None,
) -> dict:
    """Run the step in this process; return the output and the technique's report as plain data."""
    from studio.core.techniques import run_local

    def resolve(ref: str):
        target = job.versions.get(ref.strip()) or job.versions.get(ref.strip().lstrip("vV"))
        if target is None:
            raise StudioError(f"'{ref}' is neither a model file nor a version of this project")
        return target.files(), None if target.input_shapes is None else [
            tuple(s) for s in target.input_shapes
        ]

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
        progress=progress,
        cancel_requested=cancel_requested,
        resolve=resolve,
    )
    return {
        "main": str(result.output.main),
        "kind": result.output.kind,
        "details": result.details,
        "notes": list(result.notes),
        "name": result.name,
    }


def _limit_threads(threads: int) -> None:
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


def run_in_process(
    job: TechniqueJob,
    *,
    on_progress: Callable[[float, str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    timeout: float | None = None,
) -> dict:
    """``execute`` in a fresh spawned process; progress flows back, cancel is asked then forced."""
    import time

    ctx = multiprocessing.get_context("spawn")
    reader, writer = ctx.Pipe(duplex=False)
    cancel = ctx.Event()
    proc = ctx.Process(target=_child, args=(job.model_dump(mode="json"), writer, cancel), name="studio-step")
    proc.start()
    writer.close()
    started, asked_at = time.monotonic(), None
    try:
        while True:
            if should_cancel is not None and should_cancel() and asked_at is None:
                cancel.set()
                asked_at = time.monotonic()
            if asked_at is not None and time.monotonic() - asked_at > CANCEL_GRACE_SECONDS:
                proc.kill()
                raise StepCancelled("cancelled")
            if timeout is not None and time.monotonic() - started > timeout:
                proc.kill()
                raise StudioError(f"the step took longer than its limit of {timeout:.0f} s and was stopped")
            if reader.poll(0.1):
                try:
                    kind, *payload = reader.recv()
                except EOFError:
                    proc.join()
                    raise StudioError(
                        f"the step's process ended unexpectedly ({_exit_reason(proc.exitcode)})"
                    ) from None
                if kind == "progress" and on_progress is not None:
                    on_progress(*payload)
                elif kind == "done":
                    return payload[0]
                elif kind == "cancelled":
                    raise StepCancelled("cancelled")
                elif kind == "error":
                    raise _rebuild(*payload)
            elif not proc.is_alive() and not reader.poll(0):
                proc.join()
                raise StudioError(f"the step's process ended unexpectedly ({_exit_reason(proc.exitcode)})")
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        reader.close()


def _child(data: dict, writer: Connection, cancel) -> None:
    job = TechniqueJob.model_validate(data)
    try:
        result = execute(
            job,
            progress=lambda f, m: writer.send(("progress", f, m)),
            cancel_requested=cancel.is_set,
        )
        writer.send(("done", result))
    except Cancelled:
        writer.send(("cancelled",))
    except StudioError as exc:
        writer.send(("error", type(exc).__module__, type(exc).__qualname__, str(exc)))
    except Exception as exc:  # report a bug in a technique as one line; the traceback goes to the log
        traceback.print_exc()
        writer.send(("error", "studio.api", "StudioError", f"the step failed: {type(exc).__name__}: {exc}"))
    finally:
        writer.close()


def _rebuild(module: str, qualname: str, message: str) -> StudioError:
    import importlib

    try:
        cls = getattr(importlib.import_module(module), qualname)
        if isinstance(cls, type) and issubclass(cls, StudioError):
            return cls(message)
    except Exception:  # an error class we cannot rebuild is still an error with its message
        pass
    return StudioError(message)


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        import signal

        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
