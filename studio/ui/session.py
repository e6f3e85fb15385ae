"""The open project as the window drives it: jobs queued on the job manager, their results recorded.

Nothing here imports Qt, so every command the window sends can be exercised (and reused by the
command line) without a display. A technique step runs in a worker process and writes into a
staging folder; when it succeeds, the manager thread calls back here to record the new version
and queue its measurement (and the parent's, when no comparable one exists), so that every new
version gets a point on the charts without the window waiting for anything.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.api import StudioError
from studio.core.benchmark import BenchmarkSettings
from studio.core.data import DatasetSpec
from studio.jobs.events import JobEvent
from studio.jobs.manager import JobManager
from studio.optimizing import AUTO_MEASURE  # the figures `studio optimize` records after a step
from studio.project import STAGING_PREFIX, Project
from studio.store import JobRecord, Measurement, ModelVersion
from studio.ui.pool import PoolSettings

log = logging.getLogger(__name__)

WORKER_NICENESS = 10  # jobs yield the CPU to the window (Unix niceness; 0 is normal, 19 the lowest)


@dataclass(frozen=True)
class _Step:
    version: ModelVersion
    technique: str
    params: dict[str, Any]
    dataset: DatasetSpec | None
    output_dir: Path
    name: str | None
    device: str = "cpu"
    threads: int | None = None
    then: tuple[tuple[str, dict[str, Any], str | None], ...] = ()  # the recipe's remaining steps


def yaml_steps(chain: Sequence[tuple[str, dict[str, Any], str | None]]) -> str:
    import yaml

    steps = [{"technique": t, "params": p, **({"name": n} if n else {})} for t, p, n in chain]
    return yaml.safe_dump({"steps": steps}, sort_keys=False)


def dataset_spec(source: str | None) -> DatasetSpec | None:
    """A dataset picker's choice ("digits", a file or folder path; empty for none) as a spec."""
    return DatasetSpec(source=source) if source else None


class ProjectSession:
    """One open project and the job manager that runs its work; close it when the window does."""

    def __init__(self, project: Project, manager: JobManager, pool: Any = None) -> None:
        self._project = project
        self._manager = manager
        self._pool = pool
        if hasattr(pool, "workers"):
            manager.subscribe(self._lower_worker_priority)

    @classmethod
    def open(cls, path: Path, pool: PoolSettings | None = None, *, create: bool = False) -> ProjectSession:
        """Open (or make) the project, start its workers, and mark jobs a stopped studio left behind."""
        project = Project.create(path) if create else Project.open(path)
        try:
            workers = (pool or PoolSettings()).make_pool()
        except BaseException:
            project.close()
            raise
        manager = JobManager(project.store, workers, project.logs_dir)
        manager.recover()
        return cls(project, manager, workers)

    @property
    def project(self) -> Project:
        return self._project

    @property
    def manager(self) -> JobManager:
        return self._manager

    @property
    def root(self) -> Path:
        return self._project.root

    def close(self) -> None:
        """Stop the workers (running jobs become ``interrupted``), then close the database."""
        try:
            self._manager.close()
        finally:
            self._project.close()

    def _lower_worker_priority(self, event: JobEvent) -> None:
        """Run the worker of a job that starts at a lower CPU priority than the window.

        On a machine with as many busy workers as cores, the window otherwise waits for a time
        slice and its event loop stalls for a few hundred milliseconds; a niced worker loses only
        what the window actually uses. Latency figures are unaffected on an idle machine.
        """
        if event.kind != "started" or not hasattr(os, "setpriority"):
            return
        for worker in self._pool.workers():
            if worker.job_id == event.job_id and worker.pid:
                with contextlib.suppress(OSError):  # already ended, or not ours to change
                    if os.getpriority(os.PRIO_PROCESS, worker.pid) < WORKER_NICENESS:
                        os.setpriority(os.PRIO_PROCESS, worker.pid, WORKER_NICENESS)

    # -- commands ------------------------------------------------------------------------------

    def import_model(self, path: Path, *, weights: Path | None = None, trust: bool = False) -> ModelVersion:
        return self._project.import_model(Path(path), weights=weights, trust=trust)

    def submit_optimize(
        self,
        version: ModelVersion,
        technique: str,
        params: dict[str, Any] | None = None,
        *,
        dataset: str | None = None,
        device: str = "cpu",
        threads: int | None = None,
        name: str | None = None,
        then: Sequence[tuple[str, dict[str, Any], str | None]] = (),
    ) -> int:
        """Queue one technique step; refused at once (StudioError) when it could never run.

        ``then`` lists (technique, params, name) steps to queue, in turn, on the version this one makes.
        """
        from studio.jobs.spec import technique_spec
        from studio.optimizing import prepare_step, technique_job

        spec = dataset_spec(dataset)
        prepared = prepare_step(self._project, version, technique, params or {}, spec)
        out = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}job-", dir=self._project.artifacts_dir))
        step = _Step(
            version,
            prepared.technique,
            prepared.params.model_dump(mode="json"),
            spec,
            out,
            name,
            device,
            threads,
            tuple(then),
        )
        job = technique_job(self._project, prepared, output_dir=out, device=device, threads=threads)
        try:
            return self._manager.submit(
                technique_spec(job, input_version_id=version.id),
                on_done=lambda record, result: self._record_step(step, record, result),
            )
        except BaseException:
            shutil.rmtree(out, ignore_errors=True)
            raise

    def submit_recipe(
        self,
        version: ModelVersion,
        steps: Sequence[Any],
        *,
        dataset: str | None = None,
        device: str = "cpu",
        threads: int | None = None,
    ) -> int:
        """Queue the first step of a recipe; each later step is queued when the one before succeeds.

        ``steps``: objects with ``technique``, ``params`` and ``name``. Every step's technique and
        parameters are checked before the first one is queued, and the chain is checked by the
        recipe parser (each step must accept what the one before produces).
        """
        from studio.core.recipes import parse_recipe
        from studio.core.techniques import get_technique, parse_params

        if not steps:
            raise StudioError("the recipe has no steps")
        chain = [(s.technique, dict(s.params), s.name) for s in steps]
        for technique, params, _ in chain:
            parse_params(get_technique(technique), params)
        parse_recipe(yaml_steps(chain))
        first, *rest = chain
        return self.submit_optimize(
            version,
            first[0],
            first[1],
            dataset=dataset,
            device=device,
            threads=threads,
            name=first[2],
            then=rest,
        )

    def submit_measure(
        self,
        version: ModelVersion,
        *,
        dataset: str | DatasetSpec | None = None,
        settings: BenchmarkSettings = AUTO_MEASURE,
    ) -> int:
        """Queue a measurement of ``version``; its row is recorded when the job succeeds."""
        from studio.jobs.spec import measurement_spec
        from studio.measurements import measurement_request, model_ref

        spec = dataset if isinstance(dataset, DatasetSpec) or dataset is None else dataset_spec(dataset)
        request = measurement_request(
            model_ref(self._project.model_files(version), version), dataset=spec, settings=settings
        )
        return self._manager.submit(
            measurement_spec(request, input_version_id=version.id),
            on_done=lambda record, result: self._record_measurement(version, spec, record, result),
        )

    def cancel(self, job_id: int) -> bool:
        return self._manager.cancel(job_id)

    # -- what the manager thread calls back --------------------------------------------------------

    def _record_step(self, step: _Step, record: JobRecord, result: dict | None) -> None:
        from studio.optimizing import record_step_output

        try:
            if result is None:
                return
            new = record_step_output(
                self._project, step.version, step.technique, step.params, record.id, result, name=step.name
            )
        finally:
            shutil.rmtree(step.output_dir, ignore_errors=True)
        self._measure_after_step(step, new)
        if step.then:
            self._queue_next(step, new)

    def _queue_next(self, step: _Step, new: ModelVersion) -> None:
        (technique, params, name), *rest = step.then
        source = None if step.dataset is None else step.dataset.source
        try:
            self.submit_optimize(
                new,
                technique,
                params,
                dataset=source,
                device=step.device,
                threads=step.threads,
                name=name,
                then=rest,
            )
        except StudioError as error:  # this step's version is kept; the recipe stops here
            log.warning("the recipe stopped after v%s: %s", new.id, error)

    def _measure_after_step(self, step: _Step, new: ModelVersion) -> None:
        """Measure the new version, and its parent when it has no figures taken the same way."""
        try:
            self.submit_measure(new, dataset=step.dataset)
            if not self._has_comparable(step.version, step.dataset):
                self.submit_measure(step.version, dataset=step.dataset)
        except StudioError as error:  # the version is kept; only its figures are missing
            log.warning("could not queue the measurement of v%s: %s", new.id, error)

    def _has_comparable(self, version: ModelVersion, dataset: DatasetSpec | None) -> bool:
        wanted = AUTO_MEASURE
        for m in self._project.store.list_measurements(version.id):
            same = (m.device, m.runtime, m.batch, m.threads) == (
                wanted.device,
                wanted.runtime,
                wanted.batch,
                wanted.threads,
            )
            if same and (m.dataset_id is not None) == (dataset is not None):
                return True
        return False

    def _record_measurement(
        self, version: ModelVersion, dataset: DatasetSpec | None, record: JobRecord, result: dict | None
    ) -> Measurement | None:
        from studio.measurements import record_measurement

        if result is None:
            return None
        return record_measurement(self._project.store, version, result, dataset=dataset, job_id=record.id)
