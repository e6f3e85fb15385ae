"""Schema versions: check what a database holds, and bring it up to the one this code writes.

Alembic runs in-process with a configuration built here (no ini file needed at run time), on a
connection we hand it, so the same code upgrades a project file, an in-memory database in a
test, or a shared PostgreSQL store. On SQLite the whole upgrade is one ``BEGIN IMMEDIATE``
transaction: a crash mid-upgrade leaves the old schema, never half of the new one.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text

from studio.store.db import DatabaseDamagedError, SchemaError

HEAD_REVISION = "0007_project_target_device"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version"


def alembic_config(connection: Connection | None = None):
    """An Alembic ``Config`` pointing at the shipped migrations, optionally bound to a connection."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config())
    return {script.revision for script in scripts.walk_revisions()}


def current_revision(connection: Connection) -> str | None:
    """The schema revision stored in the database; None for an empty database."""
    tables = set(inspect(connection).get_table_names())
    if VERSION_TABLE not in tables:
        if tables:
            raise SchemaError("this database is not a studio project database (it has no schema version)")
        return None
    rows = [row[0] for row in connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))]
    if len(rows) > 1:
        raise DatabaseDamagedError(f"the project database is damaged: it records {len(rows)} schema versions")
    if not rows:
        if tables - {VERSION_TABLE}:
            raise SchemaError("this database is not a studio project database (its schema version is empty)")
        return None
    return rows[0]


def check_schema(engine: Engine) -> str | None:
    """The database's revision if this code can open it (None when empty); refuse anything else."""
    with engine.connect() as connection:
        revision = current_revision(connection)
    if revision is None or revision == HEAD_REVISION or revision in known_revisions():
        return revision
    raise SchemaError(
        f"this project was saved by a newer version of the studio (schema {_schema_label(revision)}); "
        "update the studio to open it"
    )


def _schema_label(revision: str) -> str:
    match = re.match(r"\d+", revision)
    return match.group(0) if match else revision


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply every migration the database lacks, in one transaction where the database allows it."""
    from alembic import command

    with migration_connection(engine) as connection:
        command.upgrade(alembic_config(connection), revision)


@contextlib.contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside one write transaction, committed only if the block succeeds."""
    if engine.dialect.name != "sqlite":
        with engine.begin() as connection:
            yield connection
        return
    with engine.connect() as connection:
        # Batch migrations copy tables; with foreign keys on, dropping the old copy would cascade.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield connection
                _check_foreign_keys(connection)
            except BaseException:
                connection.rollback()
                raise
            connection.commit()
        finally:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


def _check_foreign_keys(connection: Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        tables = ", ".join(sorted({row[0] for row in broken}))
        raise DatabaseDamagedError(f"the project database is damaged: broken links in {tables}")
