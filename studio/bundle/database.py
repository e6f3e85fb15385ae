"""The bundle's database, checked in memory: a studio schema this code knows, and rows that only
point at files the bundle holds."""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

from studio.api import StudioError
from studio.bundle.manifest import schema_number
from studio.core.files import DATABASE_NAME
from studio.store.migrate import HEAD_REVISION, known_revisions, upgrade
from studio.store.store import SQLITE_HEADER

_DAMAGED = "the project database in the bundle is damaged or not a studio database"


@dataclass(frozen=True)
class DatabaseFacts:
    revision: str
    versions: int

    @property
    def needs_upgrade(self) -> bool:
        return self.revision != HEAD_REVISION


def check_database(data: bytes, *, manifest_revision: str, folders: Mapping[str, set[str]]) -> DatabaseFacts:
    """Read the database from memory and refuse anything the studio could not open or trust.

    ``folders`` maps each artifact folder of the bundle to the file names it holds.
    """
    if not data.startswith(SQLITE_HEADER):
        raise StudioError(f"the bundle's {DATABASE_NAME} is not an SQLite database")
    connection = sqlite3.connect(":memory:")
    try:
        connection.deserialize(data)
        _check_pages(connection)
        revision = _revision(connection)
        _check_schema_objects(connection, revision)
        if revision != manifest_revision:
            raise StudioError(
                f"the bundle's manifest says schema {manifest_revision} but its database holds {revision}"
            )
        versions = _check_versions(connection, folders)
    except sqlite3.DatabaseError as exc:
        raise StudioError(f"{_DAMAGED}: {exc}") from None
    finally:
        connection.close()
    return DatabaseFacts(revision, versions)


def _check_pages(connection: sqlite3.Connection) -> None:
    result = connection.execute("PRAGMA quick_check").fetchall()
    if [row[0] for row in result] != ["ok"]:
        raise StudioError(f"{_DAMAGED}: {result[0][0]}")
    broken = connection.execute("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise StudioError(f"{_DAMAGED}: broken links in table {broken[0][0]}")


def _revision(connection: sqlite3.Connection) -> str:
    try:
        rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.OperationalError:
        raise StudioError(f"{_DAMAGED}: it records no schema version") from None
    if len(rows) != 1:
        raise StudioError(f"{_DAMAGED}: it records {len(rows)} schema versions")
    revision = str(rows[0][0])
    if revision != HEAD_REVISION and revision not in known_revisions():
        raise StudioError(
            f"this bundle was made by a newer studio (database schema {schema_number(revision)}); "
            "update the studio to open it"
        )
    return revision


def _check_schema_objects(connection: sqlite3.Connection, revision: str) -> None:
    """Exactly the tables, columns and indexes the studio's migrations make, and nothing else.

    A trigger or view would run the sender's SQL in every later query on this machine (one can
    loop forever, another rewrite rows after these checks); an extra table or column is data no
    check here has looked at.
    """
    expected = _schema_of(revision)
    found = _schema_objects(connection)
    for kind, name in sorted(set(found) - set(expected)):
        raise StudioError(f"{_DAMAGED}: it holds a {kind} {name!r} that the studio does not make")
    for kind, name in sorted(set(expected) - set(found)):
        raise StudioError(f"{_DAMAGED}: it lacks the {kind} {name!r}")
    for key, columns in expected.items():
        if found[key] != columns:
            raise StudioError(f"{_DAMAGED}: the {key[0]} {key[1]!r} does not have the studio's columns")


def _schema_objects(connection: sqlite3.Connection) -> dict[tuple[str, str], tuple[str, ...]]:
    objects = {}
    rows = connection.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_stat%'")
    for kind, name in rows.fetchall():
        columns: tuple[str, ...] = ()
        if kind == "table":
            escaped = str(name).replace('"', '""')
            columns = tuple(row[1] for row in connection.execute(f'PRAGMA table_info("{escaped}")'))
        objects[(str(kind), str(name))] = columns
    return objects


@functools.cache
def _schema_of(revision: str) -> dict[tuple[str, str], tuple[str, ...]]:
    """The schema the studio's own migrations make at ``revision``, read from a fresh database."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import StaticPool

    engine = create_engine("sqlite://", poolclass=StaticPool)
    try:
        upgrade(engine, revision)
        raw = engine.raw_connection()
        try:
            return _schema_objects(raw.driver_connection)
        finally:
            raw.close()
    finally:
        engine.dispose()


def _check_versions(connection: sqlite3.Connection, folders: Mapping[str, set[str]]) -> int:
    rows = connection.execute(
        "SELECT id, artifact, main_file, weights_file, files FROM model_versions ORDER BY id"
    ).fetchall()
    used: set[str] = set()
    for version_id, artifact, main_file, weights_file, files_json in rows:
        if artifact not in folders:
            raise StudioError(
                f"version v{version_id} needs files the bundle does not hold (artifact {str(artifact)[:12]}…)"
            )
        used.add(artifact)
        named = [
            main_file,
            *([weights_file] if weights_file is not None else []),
            *_file_list(files_json, version_id),
        ]
        for name in named:
            if name not in folders[artifact]:
                raise StudioError(
                    f"version v{version_id} lists the file {name!r}, which its folder in the bundle lacks"
                )
    unused = sorted(set(folders) - used)
    if unused:
        raise StudioError(f"the bundle holds an artifact folder no version uses ({unused[0][:12]}…)")
    return len(rows)


def _file_list(files_json: object, version_id: int) -> list[str]:
    try:
        files = json.loads(files_json) if isinstance(files_json, str) else None
    except ValueError:
        files = None
    if not isinstance(files, list) or not all(isinstance(name, str) for name in files):
        raise StudioError(f"{_DAMAGED}: version v{version_id} has no readable file list")
    return files
