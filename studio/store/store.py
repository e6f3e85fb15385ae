"""The project database behind one small API that speaks in records, never in ORM rows.

Every method is one short transaction (``session_scope``), so the window, a job manager thread
and the command line can share a database file: SQLite in WAL mode lets readers run while one
writer commits, and a writer that finds the file busy waits up to the busy timeout.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, exc, func, or_, select, text, update
from sqlalchemy.orm import Session

from studio.api import StudioError
from studio.core.files import DATABASE_NAME
from studio.core.models import TensorSpec
from studio.store.db import (
    DatabaseDamagedError,
    SchemaError,
    StoreError,
    is_url,
    make_engine,
    make_session_factory,
    session_scope,
    translated_errors,
)
from studio.store.migrate import HEAD_REVISION, check_schema, upgrade
from studio.store.orm import (
    DatasetModel,
    JobModel,
    MeasurementModel,
    ModelVersionModel,
    ProjectModel,
    utcnow,
)
from studio.store.records import (
    DATASET_KINDS,
    FINISHED_JOB_STATES,
    JOB_KINDS,
    JOB_STATES,
    DatasetRecord,
    JobRecord,
    Measurement,
    ModelVersion,
    ProjectRecord,
    VersionUsers,
)

SQLITE_HEADER = b"SQLite format 3\x00"

_UNFINISHED_JOB_STATES = tuple(state for state in JOB_STATES if state not in FINISHED_JOB_STATES)
_VERSION_REF = re.compile(r"[vV]?(\d+)")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_JOB_FIELDS = {
    "state",
    "progress",
    "message",
    "error",
    "output_version_id",
    "device",
    "log_path",
    "started_at",
    "finished_at",
}


class Store:
    """A project's records: versions and their lineage, datasets, measurements and jobs."""

    def __init__(self, engine: Engine) -> None:
        """Wrap an engine whose schema is already at head; use ``Store.open`` to get one."""
        self._engine = engine
        self._sessions = make_session_factory(engine)

    # -- opening and closing -------------------------------------------------------------------

    @classmethod
    def open(cls, url_or_path: str | Path, *, create: bool = False) -> Store:
        """Open a studio database, upgrading an older schema; ``create`` allows a new, empty one."""
        if not is_url(url_or_path):
            _check_database_file(Path(url_or_path), create=create)
        engine = make_engine(url_or_path)
        try:
            with translated_errors():
                if not is_url(url_or_path):
                    _check_integrity(engine, Path(url_or_path))
                revision = check_schema(engine)
                if revision is None and not create:
                    raise SchemaError(f"{_where(url_or_path)} is an empty database, not a studio project")
                if revision != HEAD_REVISION:
                    upgrade(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine)

    @property
    def engine(self) -> Engine:
        return self._engine

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _session(self):
        return session_scope(self._sessions)

    # -- project -------------------------------------------------------------------------------

    def project(self) -> ProjectRecord:
        record = self.find_project()
        if record is None:
            raise StoreError("the project database has no project record")
        return record

    def find_project(self) -> ProjectRecord | None:
        """The project record, or None in a database made but never named (a creation cut short)."""
        with self._session() as session:
            row = session.get(ProjectModel, 1)
            return None if row is None else _project_record(row)

    def set_project(self, name: str, app_version: str) -> ProjectRecord:
        """Name the project and record the studio version that last wrote it."""
        with self._session() as session:
            row = session.get(ProjectModel, 1)
            if row is None:
                row = ProjectModel(id=1, name=name, app_version=app_version, created_at=utcnow())
                session.add(row)
            else:
                row.name, row.app_version = name, app_version
            session.flush()
            return _project_record(row)

    def set_target_device(self, device: str) -> ProjectRecord:
        """Where the project's models will run ("cpu", "cuda:N"): every step's measurement runs there."""
        with self._session() as session:
            row = session.get(ProjectModel, 1)
            if row is None:
                raise StoreError("the project database has no project record")
            row.target_device = device
            session.flush()
            return _project_record(row)

    # -- model versions ------------------------------------------------------------------------

    def add_version(
        self,
        *,
        name: str,
        format: str,
        artifact: str,
        main_file: str,
        files: Sequence[str],
        size_bytes: int,
        parent_id: int | None = None,
        weights_file: str | None = None,
        params: int | None = None,
        macs: int | None = None,
        inputs: Iterable[TensorSpec | Mapping[str, Any]] = (),
        outputs: Iterable[TensorSpec | Mapping[str, Any]] = (),
        technique: str | None = None,
        technique_params: Mapping[str, Any] | None = None,
        source_path: str | Path | None = None,
        source_sha256: str | None = None,
        trusted: bool = False,
        notes: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Record a new version whose files are already in the artifact folder ``artifact``."""
        name = name.strip()
        if not name:
            raise StudioError("a model version needs a name")
        if not _SHA256.fullmatch(artifact):
            raise ValueError(f"artifact must be a sha256 hex digest, not {artifact!r}")
        if main_file not in files or (weights_file is not None and weights_file not in files):
            raise ValueError("main_file and weights_file must be among the version's files")
        row = ModelVersionModel(
            name=name,
            parent_id=parent_id,
            format=str(getattr(format, "value", format)),
            artifact=artifact,
            main_file=main_file,
            weights_file=weights_file,
            files=list(files),
            size_bytes=size_bytes,
            params=params,
            macs=macs,
            inputs=_tensor_dicts(inputs),
            outputs=_tensor_dicts(outputs),
            technique=technique,
            technique_params=dict(technique_params or {}),
            source_path=None if source_path is None else str(source_path),
            source_sha256=source_sha256,
            trusted=trusted,
            notes=notes,
            details=dict(details or {}),
            created_at=utcnow(),
        )
        with self._session() as session:
            if parent_id is not None:
                _version_row(session, parent_id)
            session.add(row)
            session.flush()
            return _version_record(row)

    def update_version(
        self, version_id: int, *, name: str | None = None, notes: str | None = None
    ) -> ModelVersion:
        """Rename a version or edit its notes; what it is (files, lineage) never changes."""
        with self._session() as session:
            row = _version_row(session, version_id)
            if name is not None:
                if not name.strip():
                    raise StudioError("a model version needs a name")
                row.name = name.strip()
            if notes is not None:
                row.notes = notes
            session.flush()
            return _version_record(row)

    def get_version(self, version_id: int) -> ModelVersion:
        with self._session() as session:
            return _version_record(_version_row(session, version_id))

    def find_version(self, ref: str) -> ModelVersion:
        """The version a user means by ``ref``: an id ("3", "v3") or a name that only one version has."""
        ref = ref.strip()
        if not ref:
            raise StudioError("name a model version by its id (like v3) or its name")
        match = _VERSION_REF.fullmatch(ref)
        with self._session() as session:
            if match and (row := session.get(ModelVersionModel, int(match.group(1)))) is not None:
                return _version_record(row)
            rows = session.scalars(
                select(ModelVersionModel).where(ModelVersionModel.name == ref).order_by(ModelVersionModel.id)
            ).all()
            if len(rows) == 1:
                return _version_record(rows[0])
        if rows:
            ids = ", ".join(f"v{row.id}" for row in rows)
            raise StudioError(f"{len(rows)} versions are named '{ref}' ({ids}); name one by its id")
        if match:
            raise StudioError(f"there is no version {match.group(1)} in this project")
        raise StudioError(f"there is no version named '{ref}' in this project")

    def find_version_by_artifact(self, sha: str) -> ModelVersion | None:
        """The oldest version stored in artifact folder ``sha``, to notice a model imported twice."""
        with self._session() as session:
            row = session.scalars(
                select(ModelVersionModel)
                .where(ModelVersionModel.artifact == sha)
                .order_by(ModelVersionModel.id)
                .limit(1)
            ).first()
            return None if row is None else _version_record(row)

    def list_versions(self) -> list[ModelVersion]:
        with self._session() as session:
            rows = session.scalars(select(ModelVersionModel).order_by(ModelVersionModel.id)).all()
            return [_version_record(row) for row in rows]

    def children(self, version_id: int) -> list[ModelVersion]:
        with self._session() as session:
            _version_row(session, version_id)
            rows = session.scalars(
                select(ModelVersionModel)
                .where(ModelVersionModel.parent_id == version_id)
                .order_by(ModelVersionModel.id)
            ).all()
            return [_version_record(row) for row in rows]

    def lineage(self, version_id: int) -> list[ModelVersion]:
        """The chain of versions from the root (the imported model) down to ``version_id``."""
        chain: list[ModelVersion] = []
        seen: set[int] = set()
        with self._session() as session:
            current: int | None = version_id
            while current is not None:
                if current in seen:
                    raise StoreError(
                        f"the project database is damaged: version {current} is its own ancestor"
                    )
                seen.add(current)
                row = _version_row(session, current)
                chain.append(_version_record(row))
                current = row.parent_id
        return chain[::-1]

    def version_users(self, version_id: int) -> VersionUsers:
        """What points at the version: whether it may be deleted, and what deleting it takes along."""
        with self._session() as session:
            return _version_users(session, version_id)

    def delete_version(self, version_id: int) -> tuple[int, int]:
        """Delete a version that nothing needs, with its measurements; finished jobs that used it
        stay as history with their link to it cleared. Returns (measurements removed, jobs detached).

        One transaction. Its first statement is a write, which takes the database's write lock: no
        version, measurement or job can be added between the check and the delete.
        """
        with self._session() as session:
            removed = session.execute(
                delete(MeasurementModel).where(MeasurementModel.version_id == version_id)
            ).rowcount
            refusal = _version_users(session, version_id).refusal()
            if refusal is not None:
                raise StudioError(refusal)  # rolled back: the measurements are still there
            detached = _detach_finished_jobs(session, version_id)
            session.execute(delete(ModelVersionModel).where(ModelVersionModel.id == version_id))
        return int(removed or 0), detached

    # -- datasets ------------------------------------------------------------------------------

    def add_dataset(
        self, *, name: str, kind: str, spec: Mapping[str, Any], fingerprint: str, samples: int
    ) -> DatasetRecord:
        name = name.strip()
        if not name:
            raise StudioError("a dataset needs a name")
        if kind not in DATASET_KINDS:
            raise ValueError(f"dataset kind must be one of {DATASET_KINDS}, not {kind!r}")
        with self._session() as session:
            if session.scalar(select(DatasetModel.id).where(DatasetModel.name == name)) is not None:
                raise StudioError(f"there is already a dataset named '{name}' in this project")
            row = DatasetModel(
                name=name,
                kind=kind,
                spec=dict(spec),
                fingerprint=fingerprint,
                samples=samples,
                created_at=utcnow(),
            )
            session.add(row)
            session.flush()
            return _dataset_record(row)

    def get_dataset(self, dataset_id: int) -> DatasetRecord:
        with self._session() as session:
            row = session.get(DatasetModel, dataset_id)
            if row is None:
                raise StudioError(f"there is no dataset {dataset_id} in this project")
            return _dataset_record(row)

    def get_dataset_by_name(self, name: str) -> DatasetRecord:
        with self._session() as session:
            row = session.scalars(select(DatasetModel).where(DatasetModel.name == name)).first()
            if row is None:
                raise StudioError(f"there is no dataset named '{name}' in this project")
            return _dataset_record(row)

    def find_dataset_by_fingerprint(self, fingerprint: str) -> DatasetRecord | None:
        """A dataset already recorded with the same content, so it is not recorded twice."""
        with self._session() as session:
            row = session.scalars(
                select(DatasetModel).where(DatasetModel.fingerprint == fingerprint).order_by(DatasetModel.id)
            ).first()
            return None if row is None else _dataset_record(row)

    def list_datasets(self) -> list[DatasetRecord]:
        with self._session() as session:
            rows = session.scalars(select(DatasetModel).order_by(DatasetModel.id)).all()
            return [_dataset_record(row) for row in rows]

    # -- measurements --------------------------------------------------------------------------

    def add_measurement(
        self,
        *,
        version_id: int,
        device: str,
        runtime: str,
        batch: int = 1,
        provider: str | None = None,
        threads: int | None = None,
        dataset_id: int | None = None,
        reference_version_id: int | None = None,
        job_id: int | None = None,
        accuracy: Mapping[str, Any] | None = None,
        fidelity: Mapping[str, Any] | None = None,
        latency_p50_ms: float | None = None,
        latency_p90_ms: float | None = None,
        latency_p99_ms: float | None = None,
        latency_mean_ms: float | None = None,
        latency_std_ms: float | None = None,
        throughput_per_s: float | None = None,
        runs: int | None = None,
        samples: int | None = None,
        size_bytes: int | None = None,
        params: int | None = None,
        environment: Mapping[str, Any] | None = None,
        timing: Mapping[str, Any] | None = None,
        energy_per_inference_j: float | None = None,
        peak_memory_bytes: int | None = None,
        execution: Mapping[str, Any] | None = None,
    ) -> Measurement:
        values = {
            k: v
            for k, v in locals().items()
            if k not in ("self", "accuracy", "fidelity", "environment", "timing", "execution")
        }
        row = MeasurementModel(
            **values,
            accuracy=None if accuracy is None else dict(accuracy),
            fidelity=None if fidelity is None else dict(fidelity),
            environment=dict(environment or {}),
            timing=dict(timing or {}),
            execution=dict(execution or {}),
            created_at=utcnow(),
        )
        with self._session() as session:
            _version_row(session, version_id)
            if reference_version_id is not None:
                _version_row(session, reference_version_id)
            session.add(row)
            session.flush()
            return _measurement_record(row)

    def get_measurement(self, measurement_id: int) -> Measurement:
        with self._session() as session:
            row = session.get(MeasurementModel, measurement_id)
            if row is None:
                raise StudioError(f"there is no measurement {measurement_id} in this project")
            return _measurement_record(row)

    def list_measurements(
        self, version_id: int | None = None, *, dataset_id: int | None = None
    ) -> list[Measurement]:
        query = select(MeasurementModel).order_by(MeasurementModel.id)
        if version_id is not None:
            query = query.where(MeasurementModel.version_id == version_id)
        if dataset_id is not None:
            query = query.where(MeasurementModel.dataset_id == dataset_id)
        with self._session() as session:
            return [_measurement_record(row) for row in session.scalars(query).all()]

    # -- jobs ----------------------------------------------------------------------------------

    def add_job(
        self,
        *,
        kind: str,
        technique: str | None = None,
        params: Mapping[str, Any] | None = None,
        input_version_id: int | None = None,
        dataset_id: int | None = None,
        device: str | None = None,
        log_path: str | Path | None = None,
        owner_host: str | None = None,
        owner_pid: int | None = None,
        owner_started: str | None = None,
    ) -> JobRecord:
        """Record a queued job; the job machinery moves it through its states with ``update_job``.

        The owner is the process that will record the job's outcome; its first heartbeat is now.
        """
        if kind not in JOB_KINDS:
            raise ValueError(f"job kind must be one of {JOB_KINDS}, not {kind!r}")
        now = utcnow()
        row = JobModel(
            kind=kind,
            technique=technique,
            params=dict(params or {}),
            state="queued",
            input_version_id=input_version_id,
            dataset_id=dataset_id,
            device=device,
            progress=0.0,
            message="",
            log_path=None if log_path is None else str(log_path),
            created_at=now,
            owner_host=owner_host,
            owner_pid=owner_pid,
            owner_started=owner_started,
            owner_heartbeat=None if owner_pid is None else now,
        )
        with self._session() as session:
            if input_version_id is not None:
                _version_row(session, input_version_id)
            session.add(row)
            session.flush()
            return _job_record(row)

    def update_job(self, job_id: int, **changes: Any) -> JobRecord:
        """Change a job's state, progress or result; start and finish times are filled in when due."""
        unknown = set(changes) - _JOB_FIELDS
        if unknown:
            raise ValueError(f"cannot change {', '.join(sorted(unknown))} of a job")
        _validate_job_changes(changes)
        with self._session() as session:
            row = _job_row(session, job_id)
            for key, value in changes.items():
                setattr(row, key, str(value) if key == "log_path" and value is not None else value)
            _stamp_job_times(row, changes)
            session.flush()
            return _job_record(row)

    def request_cancel(self, job_id: int) -> JobRecord:
        """Ask whichever process runs the job to stop it (it polls for this while it waits)."""
        with self._session() as session:
            row = _job_row(session, job_id)
            if row.state in FINISHED_JOB_STATES:
                raise StudioError(f"job {job_id} has already ended ({row.state})")
            row.cancel_requested = True
            session.flush()
            return _job_record(row)

    def get_job(self, job_id: int) -> JobRecord:
        with self._session() as session:
            return _job_record(_job_row(session, job_id))

    def list_jobs(self, states: Iterable[str] | None = None) -> list[JobRecord]:
        query = select(JobModel).order_by(JobModel.id)
        if states is not None:
            query = query.where(JobModel.state.in_(list(states)))
        with self._session() as session:
            return [_job_record(row) for row in session.scalars(query).all()]

    def beat_jobs(self, job_ids: Iterable[int]) -> int:
        """Say that the owner of these jobs still runs them: one write for all, however many.

        Only unfinished jobs are touched; returns how many were.
        """
        ids = list(job_ids)
        if not ids:
            return 0
        with self._session() as session:
            result = session.execute(
                update(JobModel)
                .where(JobModel.id.in_(ids), JobModel.state.in_(_UNFINISHED_JOB_STATES))
                .values(owner_heartbeat=utcnow())
            )
            return int(result.rowcount or 0)

    def interrupt_job(self, seen: JobRecord, message: str) -> bool:
        """Mark a job whose owner is gone ``interrupted``, unless it changed since it was ``seen``.

        The check and the write are one statement, so a job that ended, started or heard from
        its owner in the meantime is left as it is; returns whether the job was marked.
        """
        beat = JobModel.owner_heartbeat
        same_beat = beat.is_(None) if seen.owner_heartbeat is None else beat == seen.owner_heartbeat
        with self._session() as session:
            result = session.execute(
                update(JobModel)
                .where(JobModel.id == seen.id, JobModel.state == seen.state, same_beat)
                .values(state="interrupted", message=message, finished_at=utcnow())
            )
            return bool(result.rowcount)

    # -- health --------------------------------------------------------------------------------

    def integrity_check(self) -> str:
        """SQLite's own page-level check: "ok", or the problems it found, one a line.

        Damage bad enough to stop the check itself raises ``DatabaseDamagedError`` instead.
        """
        if self._engine.dialect.name != "sqlite":
            return f"not checked: integrity checks need SQLite, this store is {self._engine.dialect.name}"
        with translated_errors(), self._engine.connect() as connection:
            rows = connection.execute(text("PRAGMA integrity_check")).fetchall()
        return "\n".join(str(row[0]) for row in rows)


# -- helpers ---------------------------------------------------------------------------------------


def _where(url_or_path: str | Path) -> str:
    return str(url_or_path) if not is_url(url_or_path) else "the database"


def _check_database_file(path: Path, *, create: bool) -> None:
    """Refuse, before SQLite touches it, a path that is missing (unless creating) or not SQLite."""
    if path.is_dir():
        raise SchemaError(f"{path} is a folder, not a studio database")
    if not path.exists():
        if not create:
            raise StudioError(f"there is no studio database at {path}")
        return
    try:
        with open(path, "rb") as f:
            header = f.read(len(SQLITE_HEADER))
    except OSError as error:
        raise StoreError(f"the project database cannot be read: {error.strerror or error}") from error
    if header and header != SQLITE_HEADER:
        raise SchemaError(f"{path} is not a studio database (it is not an SQLite file)")


def _check_integrity(engine: Engine, path: Path) -> None:
    """Refuse a damaged database before anything writes to it: writing would spread the damage."""
    try:
        with engine.connect() as connection:
            found = [row[0] for row in connection.execute(text("PRAGMA quick_check"))]
    except exc.DatabaseError as error:
        found = [str(error.orig or error).splitlines()[0]]
    if found != ["ok"]:
        lines = [line for line in str(found[0]).splitlines() if line.strip() and not line.startswith("***")]
        detail = lines[0] if lines else "it does not read back"
        raise DatabaseDamagedError(
            f"the project database is damaged: {detail} ({path}); nothing was written to it. Restore it "
            f"from a backup or from the project's .studio file (a {DATABASE_NAME}-wal file beside it, if "
            "any, holds its latest changes)"
        )


def _tensor_dicts(specs: Iterable[TensorSpec | Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [spec.to_dict() if isinstance(spec, TensorSpec) else dict(spec) for spec in specs]


def _version_row(session: Session, version_id: int) -> ModelVersionModel:
    row = session.get(ModelVersionModel, version_id)
    if row is None:
        raise StudioError(f"there is no version {version_id} in this project")
    return row


def _version_users(session: Session, version_id: int) -> VersionUsers:
    row = _version_row(session, version_id)
    jobs = session.scalars(
        select(JobModel)
        .where(
            or_(
                JobModel.state.in_(_UNFINISHED_JOB_STATES),
                JobModel.input_version_id == version_id,
                JobModel.output_version_id == version_id,
            )
        )
        .order_by(JobModel.id)
    ).all()
    active = tuple(
        (job.id, job.state) for job in jobs if job.state in _UNFINISHED_JOB_STATES and _uses(job, row)
    )
    return VersionUsers(
        version_id=version_id,
        children=_ids(session, select(ModelVersionModel.id).where(ModelVersionModel.parent_id == version_id)),
        compared_by=_ids(
            session,
            select(MeasurementModel.version_id).where(
                MeasurementModel.reference_version_id == version_id, MeasurementModel.version_id != version_id
            ),
        ),
        active_jobs=active,
        measurements=session.scalar(
            select(func.count())
            .select_from(MeasurementModel)
            .where(MeasurementModel.version_id == version_id)
        )
        or 0,
        finished_jobs=sum(1 for job in jobs if job.state in FINISHED_JOB_STATES),
        same_artifact=_ids(
            session,
            select(ModelVersionModel.id).where(
                ModelVersionModel.artifact == row.artifact, ModelVersionModel.id != version_id
            ),
        ),
    )


def _ids(session: Session, query) -> tuple[int, ...]:
    return tuple(sorted(set(session.scalars(query).all())))


def _uses(job: JobModel, version: ModelVersionModel) -> bool:
    """Whether a job reads or writes the version: as its input or output, or named in a parameter
    the way a step names another version to read (a distillation student: "v3", "3" or its name)."""
    if version.id in (job.input_version_id, job.output_version_id):
        return True
    named = {str(value).strip() for value in (job.params or {}).values() if isinstance(value, str)}
    return bool(named & {f"v{version.id}", f"V{version.id}", str(version.id), version.name})


def _detach_finished_jobs(session: Session, version_id: int) -> int:
    """Clear a version's links from the finished jobs that used it; the jobs stay as history."""
    finished = JobModel.state.in_(FINISHED_JOB_STATES)
    ids: set[int] = set()
    for column in (JobModel.input_version_id, JobModel.output_version_id):
        found = session.scalars(select(JobModel.id).where(column == version_id, finished)).all()
        if found:
            session.execute(update(JobModel).where(JobModel.id.in_(found)).values({column.key: None}))
        ids.update(found)
    return len(ids)


def _job_row(session: Session, job_id: int) -> JobModel:
    row = session.get(JobModel, job_id)
    if row is None:
        raise StudioError(f"there is no job {job_id} in this project")
    return row


def _validate_job_changes(changes: Mapping[str, Any]) -> None:
    state = changes.get("state")
    if state is not None and state not in JOB_STATES:
        raise ValueError(f"job state must be one of {JOB_STATES}, not {state!r}")
    progress = changes.get("progress")
    if progress is not None and not 0.0 <= progress <= 1.0:
        raise ValueError(f"job progress must be between 0 and 1, not {progress!r}")


def _stamp_job_times(row: JobModel, changes: Mapping[str, Any]) -> None:
    if "state" not in changes:
        return
    now: datetime = utcnow()
    if row.state == "running" and row.started_at is None:
        row.started_at = now
    if row.state in FINISHED_JOB_STATES and row.finished_at is None:
        row.finished_at = now
    if row.state == "succeeded" and "progress" not in changes:
        row.progress = 1.0


def _project_record(row: ProjectModel) -> ProjectRecord:
    return ProjectRecord(
        name=row.name, created_at=row.created_at, app_version=row.app_version, target_device=row.target_device
    )


def _version_record(row: ModelVersionModel) -> ModelVersion:
    return ModelVersion(
        id=row.id,
        name=row.name,
        parent_id=row.parent_id,
        format=row.format,
        artifact=row.artifact,
        main_file=row.main_file,
        weights_file=row.weights_file,
        files=tuple(row.files),
        size_bytes=row.size_bytes,
        params=row.params,
        macs=row.macs,
        inputs=tuple(TensorSpec.from_dict(d) for d in row.inputs),
        outputs=tuple(TensorSpec.from_dict(d) for d in row.outputs),
        technique=row.technique,
        technique_params=dict(row.technique_params),
        source_path=row.source_path,
        source_sha256=row.source_sha256,
        trusted=row.trusted,
        created_at=row.created_at,
        notes=row.notes,
        details=dict(row.details or {}),
    )


def _dataset_record(row: DatasetModel) -> DatasetRecord:
    return DatasetRecord(
        id=row.id,
        name=row.name,
        kind=row.kind,
        spec=dict(row.spec),
        fingerprint=row.fingerprint,
        samples=row.samples,
        created_at=row.created_at,
    )


def _columns(row: object, names: Iterable[str]) -> dict[str, Any]:
    return {name: getattr(row, name) for name in names}


def _measurement_record(row: MeasurementModel) -> Measurement:
    return Measurement(**_columns(row, (f.name for f in fields(Measurement))))


def _job_record(row: JobModel) -> JobRecord:
    return JobRecord(**_columns(row, (f.name for f in fields(JobRecord))))
