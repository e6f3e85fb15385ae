"""The tables, as private ORM classes; the store turns rows into records before returning them.

Every change here needs a migration under ``migrations/versions``: a test compares this metadata
with the schema the migrations build and fails on any difference.

Rows that other rows point to (versions, datasets) are never deleted silently: their foreign
keys are ``RESTRICT``, so lineage and measurements cannot lose what they refer to. Only a
measurement's link to the job that produced it may be cleared (``SET NULL``) when job history
is trimmed.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Stored as naive UTC (SQLite has no time zones), always returned as an aware UTC datetime."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must carry a time zone")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class BaseModel(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _restrict(target: str) -> ForeignKey:
    return ForeignKey(target, ondelete="RESTRICT")


class ProjectModel(BaseModel):
    """The one row that names the project and the studio version that last wrote it."""

    __tablename__ = "project"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    app_version: Mapped[str] = mapped_column(String)
    target_device: Mapped[str] = mapped_column(
        String, default="cpu", server_default="cpu"
    )  # steps measured there


class DatasetModel(BaseModel):
    __tablename__ = "datasets"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)
    kind: Mapped[str] = mapped_column(String)
    spec: Mapped[dict] = mapped_column(JSON)
    fingerprint: Mapped[str] = mapped_column(String)
    samples: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ModelVersionModel(BaseModel):
    __tablename__ = "model_versions"
    __table_args__ = {"sqlite_autoincrement": True}  # ids are what users type ("v3"): never reuse one

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String, index=True)
    parent_id: Mapped[int | None] = mapped_column(_restrict("model_versions.id"), index=True)
    format: Mapped[str] = mapped_column(String)
    artifact: Mapped[str] = mapped_column(String, index=True)
    main_file: Mapped[str] = mapped_column(String)
    weights_file: Mapped[str | None] = mapped_column(String)
    files: Mapped[list] = mapped_column(JSON)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    params: Mapped[int | None] = mapped_column(BigInteger)
    macs: Mapped[int | None] = mapped_column(BigInteger)
    inputs: Mapped[list] = mapped_column(JSON)
    outputs: Mapped[list] = mapped_column(JSON)
    technique: Mapped[str | None] = mapped_column(String)
    technique_params: Mapped[dict] = mapped_column(JSON)
    source_path: Mapped[str | None] = mapped_column(Text)
    source_sha256: Mapped[str | None] = mapped_column(String)
    trusted: Mapped[bool] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    notes: Mapped[str] = mapped_column(Text)
    details: Mapped[dict] = mapped_column(JSON, server_default=text("'{}'"))


class JobModel(BaseModel):
    __tablename__ = "jobs"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String)
    technique: Mapped[str | None] = mapped_column(String)
    params: Mapped[dict] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String, index=True)
    input_version_id: Mapped[int | None] = mapped_column(_restrict("model_versions.id"), index=True)
    output_version_id: Mapped[int | None] = mapped_column(_restrict("model_versions.id"), index=True)
    dataset_id: Mapped[int | None] = mapped_column(_restrict("datasets.id"), index=True)
    device: Mapped[str | None] = mapped_column(String)
    progress: Mapped[float] = mapped_column(Float)
    message: Mapped[str] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    log_path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_requested: Mapped[bool] = mapped_column(server_default=false())
    # The process that records the job's outcome, and when it last said it still does.
    owner_host: Mapped[str | None] = mapped_column(String)
    owner_pid: Mapped[int | None] = mapped_column(Integer)
    owner_started: Mapped[str | None] = mapped_column(String)
    owner_heartbeat: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MeasurementModel(BaseModel):
    __tablename__ = "measurements"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(_restrict("model_versions.id"), index=True)
    dataset_id: Mapped[int | None] = mapped_column(_restrict("datasets.id"), index=True)
    reference_version_id: Mapped[int | None] = mapped_column(_restrict("model_versions.id"), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), index=True)
    device: Mapped[str] = mapped_column(String)
    runtime: Mapped[str] = mapped_column(String)
    provider: Mapped[str | None] = mapped_column(String)
    batch: Mapped[int] = mapped_column(Integer)
    threads: Mapped[int | None] = mapped_column(Integer)
    accuracy: Mapped[dict | None] = mapped_column(JSON)
    fidelity: Mapped[dict | None] = mapped_column(JSON)
    latency_p50_ms: Mapped[float | None] = mapped_column(Float)
    latency_p90_ms: Mapped[float | None] = mapped_column(Float)
    latency_p99_ms: Mapped[float | None] = mapped_column(Float)
    latency_mean_ms: Mapped[float | None] = mapped_column(Float)
    latency_std_ms: Mapped[float | None] = mapped_column(Float)
    throughput_per_s: Mapped[float | None] = mapped_column(Float)
    runs: Mapped[int | None] = mapped_column(Integer)
    samples: Mapped[int | None] = mapped_column(Integer)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    params: Mapped[int | None] = mapped_column(BigInteger)
    environment: Mapped[dict] = mapped_column(JSON)
    timing: Mapped[dict] = mapped_column(JSON, server_default=text("'{}'"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    energy_per_inference_j: Mapped[float | None] = mapped_column(Float)
    peak_memory_bytes: Mapped[int | None] = mapped_column(BigInteger)
    execution: Mapped[dict] = mapped_column(JSON, server_default=text("'{}'"))
