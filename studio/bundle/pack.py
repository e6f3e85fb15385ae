"""`studio pack`: a project as one `.studio` file, the same bytes every time for the same project.

The database goes in as a consistent copy (``VACUUM INTO`` reads one snapshot, whatever the
window is writing), compacted and in rollback-journal mode; its byte layout depends only on the
rows it holds. Members are sorted and carry fixed timestamps and permissions, and the manifest
holds the project's own creation time instead of the time of packing. Job logs stay behind.
"""

from __future__ import annotations

import shutil
import sqlite3
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from studio import __version__
from studio.api import StudioError
from studio.bundle.manifest import FORMAT_NAME, FORMAT_VERSION, MANIFEST_NAME, Manifest, MemberEntry
from studio.core.files import atomic_path, owned_prefix, remove_leftovers, sha256_file
from studio.project import ARTIFACTS_DIR, DATABASE_NAME, Project
from studio.store import ModelVersion

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = stat.S_IFREG | 0o644
_CHUNK = 1 << 20


@dataclass(frozen=True)
class PackResult:
    path: Path
    size_bytes: int
    sha256: str
    versions: int
    artifacts: int
    members: int
    schema_revision: str

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "versions": self.versions,
            "artifacts": self.artifacts,
            "members": self.members,
            "schema_revision": self.schema_revision,
        }


def pack_project(project_dir: Path, out: Path) -> PackResult:
    """Write the project in ``project_dir`` to the bundle ``out`` (replaced atomically)."""
    out = Path(out).expanduser().absolute()
    if out.is_dir():
        raise StudioError(f"{out} is a folder; give the bundle file to write, like {out / 'project.studio'}")
    with Project.open(project_dir) as project, tempfile.TemporaryDirectory(prefix=_scratch_prefix()) as tmp:
        if out.resolve().is_relative_to(project.artifacts_dir.resolve()):
            raise StudioError(f"{out} is inside the project's model store; write the bundle somewhere else")
        versions = project.store.list_versions()
        shas = _checked_artifacts(project, versions)
        record = project.store.project()
        database = snapshot_database(project.database_path, Path(tmp) / DATABASE_NAME)
        files = [(DATABASE_NAME, database)] + [
            (f"{ARTIFACTS_DIR}/{sha}/{name}", path)
            for sha in shas
            for name, path in _folder_files(project, sha)
        ]
        manifest = Manifest(
            format=FORMAT_NAME,
            format_version=FORMAT_VERSION,
            app_version=__version__,
            created=record.to_dict()["created_at"],
            project=record.name,
            schema_revision=database_revision(database),
            members=[
                MemberEntry(path=name, sha256=sha256_file(p), size=p.stat().st_size) for name, p in files
            ],
        )
        with atomic_path(out) as staged:
            _write_zip(staged, manifest.to_json(), files)
            staged.chmod(0o644)
    return PackResult(
        path=out,
        size_bytes=out.stat().st_size,
        sha256=sha256_file(out),
        versions=len(versions),
        artifacts=len(shas),
        members=len(files) + 1,
        schema_revision=manifest.schema_revision,
    )


def _checked_artifacts(project: Project, versions: list[ModelVersion]) -> list[str]:
    """Every artifact folder the versions use, each verified against its name before packing."""
    shas = sorted({v.artifact for v in versions})
    for sha in shas:
        if not project.verify_artifact(sha):
            users = ", ".join(v.ref for v in versions if v.artifact == sha)
            raise StudioError(
                f"the files of {users} in {ARTIFACTS_DIR}/{sha[:12]}… are missing or damaged "
                "(they no longer match their hash), so the project cannot be packed"
            )
    return shas


def _folder_files(project: Project, sha: str) -> list[tuple[str, Path]]:
    folder = project.artifact_dir(sha)
    return sorted((p.relative_to(folder).as_posix(), p) for p in folder.rglob("*") if p.is_file())


UNFINISHED_WHEN_PACKED = "the project was saved to a .studio file while this job was unfinished"


def snapshot_database(source: Path, target: Path) -> Path:
    """A consistent, compact, deterministic copy of a live project database.

    Job log paths point into the project's ``logs/`` folder, which is not packed, so the copy
    forgets them rather than pointing at files the receiver will never have. Which process on
    which machine ran a job is the sender's business, not the receiver's: the copy forgets that
    too, and a job still queued or running here is recorded there as interrupted (nothing will
    ever finish it).
    """
    connection = sqlite3.connect(source)
    try:
        connection.execute("VACUUM INTO ?", (str(target),))
    finally:
        connection.close()
    copy = sqlite3.connect(target)
    try:
        columns = {row[1] for row in copy.execute("PRAGMA table_info(jobs)")}
        if "log_path" in columns:
            copy.execute("UPDATE jobs SET log_path = NULL WHERE log_path IS NOT NULL")
        owner = [c for c in ("owner_host", "owner_pid", "owner_started", "owner_heartbeat") if c in columns]
        if owner:
            copy.execute(f"UPDATE jobs SET {', '.join(f'{c} = NULL' for c in owner)}")
        copy.execute(
            "UPDATE jobs SET state = 'interrupted', message = ? WHERE state IN ('queued', 'running')",
            (UNFINISHED_WHEN_PACKED,),
        )
        copy.commit()
        copy.execute("VACUUM")
    finally:
        copy.close()
    return target


def database_revision(path: Path) -> str:
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.DatabaseError as exc:
        raise StudioError(f"the project database has no schema version: {exc}") from None
    finally:
        connection.close()
    if len(rows) != 1:
        raise StudioError("the project database records no single schema version")
    return str(rows[0][0])


def member_info(name: str, size: int) -> zipfile.ZipInfo:
    """A zip entry that says nothing about when or where it was made."""
    info = zipfile.ZipInfo(name, ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # unix, so the permissions below are read as such
    info.external_attr = FILE_MODE << 16
    info.file_size = size  # lets zipfile choose zip64 up front for members over 2 GB
    return info


def _write_zip(path: Path, manifest: bytes, files: list[tuple[str, Path]]) -> None:
    with zipfile.ZipFile(path, "w", allowZip64=True) as archive:
        archive.writestr(member_info(MANIFEST_NAME, len(manifest)), manifest)
        for name, source in sorted(files):
            with (
                open(source, "rb") as fin,
                archive.open(member_info(name, source.stat().st_size), "w") as fout,
            ):
                shutil.copyfileobj(fin, fout, _CHUNK)


def _scratch_prefix() -> str:
    """The scratch folder's prefix, after clearing those of packs that were killed half way."""
    remove_leftovers(Path(tempfile.gettempdir()), "studio-pack-")
    return owned_prefix("studio-pack-")
