"""The one engine that runs a project's work: technique steps, recipes and measurements, as jobs.

The command line waits on it, the Python API calls it and the window subscribes to its events
(through its Qt adapter). All three go through the same methods here, so a result, a refusal
or a bug is the same wherever the user meets it.

Underneath, everything is asynchronous: ``submit_*`` records a queued job and returns its id.
When a step succeeds, the manager thread records the new version, queues its measurement (and
the parent's, when the parent has none taken the same way) and, in a recipe, the next step.
``run_step``, ``run_recipe`` and ``measure`` submit exactly so and then wait for the chain.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.api import StudioError
from studio.core.benchmark import BenchmarkSettings
from studio.core.data import DatasetSpec
from studio.core.models import code_bearing_files, untrusted_error
from studio.core.trust import is_model_trusted
from studio.engine.executors import PoolSettings, settings_for_device
from studio.engine.placement import AUTO, Placement, place_step
from studio.engine.steps import (
    AUTO_MEASURE,
    PlannedStep,
    StepOutcome,
    comparable_measurement,
    plan_recipe,
    prepare_step,
    record_step_output,
    technique_job,
)
from studio.jobs.events import JobEvent
from studio.jobs.manager import JobManager
from studio.jobs.spec import measurement_spec, technique_spec
from studio.measurements import measurement_request, model_ref, record_measurement
from studio.project import STAGING_PREFIX, Project
from studio.store import JobRecord, Measurement, ModelVersion

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25
Progress = Callable[[float, str], None]
CancelWanted = Callable[[], bool]


class JobCancelled(StudioError):
    """The user cancelled the job; nothing of it was kept."""


def as_dataset(dataset: str | DatasetSpec | None) -> DatasetSpec | None:
    """A dataset picker's choice ("digits", a file or folder path; empty for none) as a spec."""
    if dataset is None or isinstance(dataset, DatasetSpec):
        return dataset
    return DatasetSpec(source=str(dataset)) if dataset else None


@dataclass(frozen=True)
class _Step:
    version: ModelVersion
    technique: str
    params: dict[str, Any]
    dataset: DatasetSpec | None
    output_dir: Path
    name: str | None
    device: str  # as asked: "auto" is placed again for every step of a recipe
    ranks: tuple[str, ...]  # data-parallel ranks asked for
    threads: int | None
    measure: BenchmarkSettings | None
    then: tuple[PlannedStep, ...]
    watched: bool  # someone waits on this chain and will collect what it led to
    placed: Placement  # where it went, said in its notes


@dataclass
class _Followups:
    """What a finished step led to, noted on the manager thread before the step's job settles."""

    version_id: int | None = None
    notes: list[str] = field(default_factory=list)
    measurements: list[int] = field(default_factory=list)  # job ids: the new version's first
    next_job: int | None = None
    next_error: str | None = None


class Engine:
    """A project, its job manager and its workers, in this process. Close it (or use ``with``)."""

    def __init__(
        self, project: Project, pool: Any, *, owns_project: bool = False, min_fidelity: float | None = None
    ) -> None:
        self._project = project
        self.min_fidelity = min_fidelity  # a step whose result follows its parent less closely is refused
        self._pool = pool
        self._owns_project = owns_project
        self._manager = JobManager(project.store, pool, project.logs_dir)
        self._manager.recover()
        self._lock = threading.Lock()
        self._followups: dict[int, _Followups] = {}

    @classmethod
    def open(cls, path: Path, settings: PoolSettings | None = None, *, create: bool = False) -> Engine:
        """Open (or make) the project at ``path`` and start its workers: what the window does."""
        project = Project.create(path) if create else Project.open(path)
        try:
            pool = (settings or PoolSettings()).make_pool()
        except BaseException:
            project.close()
            raise
        try:
            return cls(project, pool, owns_project=True)
        except BaseException:
            pool.close()
            project.close()
            raise

    @classmethod
    def for_project(
        cls,
        project: Project,
        *,
        device: str = AUTO,
        executor: str = "local",
        cpu_workers: int = 1,
        min_fidelity: float | None = None,
    ) -> Engine:
        """Workers for jobs on ``device`` (and CPU workers for the measurements): what a command
        or a script needs. The project stays the caller's to close.

        ``min_fidelity`` turns the gate's warning into a refusal: a step's result that follows its
        parent less closely than that on held-out samples is not recorded (see studio.core.gate).
        """
        settings = settings_for_device(
            executor, device, cpu_workers=cpu_workers, measured_on=project.target_device
        )
        return cls(project, settings.make_pool(), min_fidelity=min_fidelity)

    @property
    def project(self) -> Project:
        return self._project

    @property
    def root(self) -> Path:
        return self._project.root

    @property
    def manager(self) -> JobManager:
        return self._manager

    @property
    def pool(self) -> Any:
        return self._pool

    def subscribe(self, listener: Callable[[JobEvent], None]) -> Callable[[], None]:
        """Every job event, from the manager thread; returns the unsubscribe call."""
        return self._manager.subscribe(listener)

    def active(self) -> list[int]:
        return self._manager.active()

    def cancel(self, job_id: int) -> bool:
        return self._manager.cancel(job_id)

    def close(self) -> None:
        """Stop the workers (running jobs become ``interrupted``); close the project if opened here."""
        try:
            self._manager.close()
        finally:
            if self._owns_project:
                self._project.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- queueing --------------------------------------------------------------------------------

    def submit_optimize(
        self,
        version: ModelVersion,
        technique: str,
        params: dict[str, Any] | None = None,
        *,
        dataset: str | DatasetSpec | None = None,
        device: str = AUTO,
        ranks: Sequence[str] = (),
        threads: int | None = None,
        name: str | None = None,
        measure: BenchmarkSettings | None = AUTO_MEASURE,
    ) -> int:
        """Queue one technique step; refused at once (StudioError) when it could never run.

        ``device`` "auto" puts a step that trains on a GPU when there is one, and every other on
        the CPU (studio.engine.placement); ``ranks`` runs a training step as data-parallel ranks.
        """
        return self._submit_step(
            version, technique, params, as_dataset(dataset), (device, tuple(ranks), False), threads, name,
            self._on_target(measure), (), False,
        )  # fmt: skip

    def submit_recipe(
        self,
        version: ModelVersion,
        recipe: Any,
        *,
        data: str | None = None,
        device: str = AUTO,
        ranks: Sequence[str] = (),
        threads: int | None = None,
    ) -> int:
        """Queue a recipe's first step; each later step is queued when the one before succeeds."""
        first, *rest = plan_recipe(recipe, data)
        return self._submit_step(
            version, first.technique, first.params, first.dataset, (device, tuple(ranks), True), threads, first.name,
            self._on_target(AUTO_MEASURE), tuple(rest), False,
        )  # fmt: skip

    def submit_measure(
        self,
        version: ModelVersion,
        *,
        dataset: str | DatasetSpec | None = None,
        settings: BenchmarkSettings = AUTO_MEASURE,
        reference: ModelVersion | None = None,
    ) -> int:
        """Queue a measurement of ``version``; its row is recorded when the job succeeds."""
        spec = as_dataset(dataset)
        for needed in (version, reference):
            if needed is not None:
                self._check_trusted(needed)
        ref = None if reference is None else model_ref(self._project.model_files(reference), reference)
        request = measurement_request(
            model_ref(self._project.model_files(version), version),
            dataset=spec,
            settings=settings,
            reference=ref,
        )
        return self._manager.submit(
            measurement_spec(request, input_version_id=version.id),
            on_done=lambda record, result: self._measurement_ended(version, spec, reference, record, result),
        )

    # -- waiting ---------------------------------------------------------------------------------

    def run_step(
        self,
        version: ModelVersion,
        technique: str,
        params: dict[str, Any] | None = None,
        *,
        dataset: str | DatasetSpec | None = None,
        device: str = AUTO,
        ranks: Sequence[str] = (),
        threads: int | None = None,
        name: str | None = None,
        measure: BenchmarkSettings | None = AUTO_MEASURE,
        on_progress: Progress | None = None,
        should_cancel: CancelWanted | None = None,
    ) -> StepOutcome:
        """Run one step and the measurements that follow it; the outcome once all have ended."""
        spec = as_dataset(dataset)
        measure = self._on_target(measure)
        job_id = self._submit_step(
            version, technique, params, spec, (device, tuple(ranks), False), threads, name, measure, (), True
        )
        outcome, _ = self._outcome(job_id, version, measure, spec, on_progress, should_cancel)
        return outcome

    def run_recipe(
        self,
        recipe: Any,
        version: ModelVersion,
        *,
        data: str | None = None,
        device: str = AUTO,
        ranks: Sequence[str] = (),
        threads: int | None = None,
        on_progress: Progress | None = None,
        should_cancel: CancelWanted | None = None,
    ) -> Iterator[StepOutcome]:
        """Run the recipe's steps in order, each on the version the one before made."""
        planned = plan_recipe(recipe, data)
        measure = self._on_target(AUTO_MEASURE)
        first, *rest = planned
        job_id: int | None = self._submit_step(
            version, first.technique, first.params, first.dataset, (device, tuple(ranks), True), threads, first.name,
            measure, tuple(rest), True,
        )  # fmt: skip
        total = len(planned)
        for index, step in enumerate(planned):

            def scaled(fraction: float, message: str, i: int = index, name: str = step.technique) -> None:
                if on_progress is not None:
                    on_progress((i + fraction) / total, f"step {i + 1}/{total} {name}: {message}")

            assert job_id is not None
            outcome, follow = self._outcome(job_id, version, measure, step.dataset, scaled, should_cancel)
            yield outcome
            version, job_id = outcome.version, follow.next_job
            if index + 1 < total and job_id is None:
                raise StudioError(follow.next_error or f"step {index + 2} of the recipe could not be queued")

    def measure(
        self,
        version: ModelVersion,
        *,
        dataset: str | DatasetSpec | None = None,
        settings: BenchmarkSettings | None = None,
        reference: ModelVersion | None = None,
        on_progress: Progress | None = None,
        should_cancel: CancelWanted | None = None,
    ) -> Measurement:
        """Measure ``version`` as a job and return the recorded measurement."""
        job_id = self.submit_measure(
            version, dataset=dataset, settings=settings or BenchmarkSettings(), reference=reference
        )
        self._wait(job_id, on_progress, should_cancel)
        return self._measurement_of(version, job_id)

    def _outcome(
        self,
        job_id: int,
        parent: ModelVersion,
        measure: BenchmarkSettings | None,
        dataset: DatasetSpec | None,
        on_progress: Progress | None,
        should_cancel: CancelWanted | None,
    ) -> tuple[StepOutcome, _Followups]:
        try:
            self._wait(job_id, on_progress, should_cancel)
        finally:
            with self._lock:
                follow = self._followups.pop(job_id, None) or _Followups()
        assert follow.version_id is not None  # a step that succeeded has its version recorded
        store = self._project.store
        new = store.get_version(follow.version_id)
        for measurement_job in follow.measurements:
            self._wait(measurement_job, None, should_cancel)
        after = before = None
        if measure is not None:
            if not follow.measurements:
                raise StudioError(f"the measurement of v{new.id} could not be queued")
            after = self._measurement_of(new, follow.measurements[0])
            before = comparable_measurement(store, parent, measure, dataset)
        return StepOutcome(new, after, before, follow.notes), follow

    def _wait(
        self, job_id: int, on_progress: Progress | None, should_cancel: CancelWanted | None
    ) -> JobRecord:
        """Wait for the job to end, passing on its progress and a cancel asked for here or from
        another process (`studio jobs cancel ID` writes it to the database)."""

        def listen(event: JobEvent) -> None:
            if event.job_id == job_id and event.kind == "progress" and event.fraction is not None:
                on_progress(event.fraction, event.message)  # type: ignore[misc]

        unsubscribe = self._manager.subscribe(listen) if on_progress is not None else None
        try:
            asked = False
            while True:
                try:
                    record = self._manager.wait(job_id, POLL_SECONDS)
                    break
                except TimeoutError:
                    if not asked and self._cancel_wanted(job_id, should_cancel):
                        asked = True
                        self._manager.cancel(job_id)
        finally:
            if unsubscribe is not None:
                unsubscribe()
        if record.state == "succeeded":
            return record
        if record.state == "cancelled":
            raise JobCancelled(f"job {job_id} was cancelled; nothing of it was kept")
        raise StudioError(record.error or f"job {job_id} ended {record.state}")

    def _on_target(self, measure: BenchmarkSettings | None) -> BenchmarkSettings | None:
        """The measurement after a step, on the project's target device (where its models will run)."""
        if measure is AUTO_MEASURE:
            return dataclasses.replace(measure, device=self._project.target_device)
        return measure

    def _cancel_wanted(self, job_id: int, should_cancel: CancelWanted | None) -> bool:
        if should_cancel is not None and should_cancel():
            return True
        return self._project.store.get_job(job_id).cancel_requested

    def _check_trusted(self, version: ModelVersion) -> None:
        """A model whose files run code is refused here, in one sentence, before a job is queued:
        a worker would refuse it too, but only after the user waited for one to start."""
        files = self._project.model_files(version)
        if not is_model_trusted(files):
            raise untrusted_error(code_bearing_files(files)[0], files.format)

    def _measurement_of(self, version: ModelVersion, job_id: int) -> Measurement:
        for m in reversed(self._project.store.list_measurements(version.id)):
            if m.job_id == job_id:
                return m
        raise StudioError(f"job {job_id} ended without recording its measurement")

    # -- what the manager thread calls back --------------------------------------------------------

    def _submit_step(
        self,
        version: ModelVersion,
        technique: str,
        params: dict[str, Any] | None,
        dataset: DatasetSpec | None,
        where: tuple[str, tuple[str, ...], bool],
        threads: int | None,
        name: str | None,
        measure: BenchmarkSettings | None,
        then: tuple[PlannedStep, ...],
        watched: bool,
    ) -> int:
        """``where``: the device and ranks asked for, and whether the step is one of a recipe's,
        placed here for this step's technique."""
        from studio.core.techniques import get_technique

        prepared = prepare_step(version, technique, params or {}, dataset)
        device, ranks, in_recipe = where
        placed = place_step(get_technique(prepared.technique), device, ranks, in_recipe=in_recipe)
        self._check_trusted(version)
        out = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}job-", dir=self._project.artifacts_dir))
        step = _Step(
            version,
            prepared.technique,
            prepared.params.model_dump(mode="json"),
            dataset,
            out,
            name,
            device,
            ranks,
            threads,
            measure,
            then,
            watched,
            placed,
        )
        job = technique_job(
            self._project,
            prepared,
            output_dir=out,
            device=placed.device,
            ranks=placed.ranks,
            threads=threads,
            fidelity_floor=self.min_fidelity,
        )
        try:
            return self._manager.submit(
                technique_spec(job, input_version_id=version.id),
                on_done=lambda record, result: self._step_ended(step, record, result),
            )
        except BaseException:
            shutil.rmtree(out, ignore_errors=True)
            raise

    def _step_ended(self, step: _Step, record: JobRecord, result: dict | None) -> None:
        follow = _Followups()
        try:
            if result is None:
                return
            said = step.placed.sentence((result.get("details") or {}).get("training"))
            if said:
                result = {**result, "notes": [*(result.get("notes") or []), said]}
            new = record_step_output(
                self._project, step.version, step.technique, step.params, record.id, result, name=step.name
            )
        finally:
            shutil.rmtree(step.output_dir, ignore_errors=True)
            if step.watched:
                with self._lock:
                    self._followups[record.id] = follow
        follow.version_id, follow.notes = new.id, list(result.get("notes") or [])
        if step.measure is not None:
            follow.measurements = self._measure_after_step(step, new)
        if step.then:
            follow.next_job, follow.next_error = self._queue_next(step, new)

    def _measure_after_step(self, step: _Step, new: ModelVersion) -> list[int]:
        """Measure the new version, and its parent when it has no figures taken the same way."""
        assert step.measure is not None
        queued = []
        try:
            # timed in alternating rounds against its parent: the speed-up is one job's, paired
            queued.append(
                self.submit_measure(new, dataset=step.dataset, settings=step.measure, reference=step.version)
            )
            store = self._project.store
            if comparable_measurement(store, step.version, step.measure, step.dataset) is None:
                queued.append(self.submit_measure(step.version, dataset=step.dataset, settings=step.measure))
        except StudioError as error:  # the version is kept; only its figures are missing
            log.warning("could not queue the measurement of v%s: %s", new.id, error)
        return queued

    def _queue_next(self, step: _Step, new: ModelVersion) -> tuple[int | None, str | None]:
        following, *rest = step.then
        try:
            job_id = self._submit_step(
                new, following.technique, following.params, following.dataset, (step.device, step.ranks, True),
                step.threads,
                following.name, step.measure, tuple(rest), step.watched,
            )  # fmt: skip
        except StudioError as error:  # this step's version is kept; the recipe stops here
            log.warning("the recipe stopped after v%s: %s", new.id, error)
            return None, str(error)
        return job_id, None

    def _measurement_ended(
        self,
        version: ModelVersion,
        dataset: DatasetSpec | None,
        reference: ModelVersion | None,
        record: JobRecord,
        result: dict | None,
    ) -> None:
        if result is not None:
            record_measurement(
                self._project.store, version, result, dataset=dataset, reference=reference, job_id=record.id
            )
