"""The bundle's database, checked in memory: a studio schema this code knows, and rows that only
point at files the bundle holds."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

from studio.api import StudioError
from studio.bundle.manifest import schema_number
from studio.store.migrate import HEAD_REVISION, known_revisions
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
        raise StudioError("the bundle's studio.sqlite is not an SQLite database")
    connection = sqlite3.connect(":memory:")
    try:
        connection.deserialize(data)
        _check_pages(connection)
        revision = _revision(connection)
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


def _check_versions(connection: sqlite3.Connection, folders: Mapping[str, set[str]]) -> int:
    rows = connection.execute(
        "SELECT id, artifact, main_file, files FROM model_versions ORDER BY id"
    ).fetchall()
    used: set[str] = set()
    for version_id, artifact, main_file, files_json in rows:
        if artifact not in folders:
            raise StudioError(
                f"version v{version_id} needs files the bundle does not hold (artifact {str(artifact)[:12]}…)"
            )
        used.add(artifact)
        for name in [main_file, *_file_list(files_json, version_id)]:
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
