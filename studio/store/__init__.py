"""The project database: SQLAlchemy tables, Alembic migrations, and a store that returns records."""

from studio.store.db import DatabaseDamagedError, DatabaseLockedError, SchemaError, StoreError, make_engine
from studio.store.migrate import HEAD_REVISION
from studio.store.records import (
    DatasetRecord,
    JobRecord,
    Measurement,
    ModelVersion,
    ProjectRecord,
    VersionUsers,
)
from studio.store.store import Store

__all__ = [
    "HEAD_REVISION",
    "DatabaseDamagedError",
    "DatabaseLockedError",
    "DatasetRecord",
    "JobRecord",
    "Measurement",
    "ModelVersion",
    "ProjectRecord",
    "SchemaError",
    "Store",
    "StoreError",
    "VersionUsers",
    "make_engine",
]
