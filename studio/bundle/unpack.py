"""`studio unpack`: a `.studio` file into a new project folder, checked through before it is written.

Every check runs on the zip as it is (names, entry types, sizes, manifest, every hash, every
artifact folder's name against its content, the database's schema and rows). Only then are the
files extracted into a staging folder beside the target, hashed again as they are written, an
older database schema upgraded there, and the folder renamed into place. A refused bundle
leaves nothing behind, not even the target folder. Nothing from the bundle is imported,
unpickled or run: an architecture file inside it stays untrusted on this machine until the
user trusts it here.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from studio.api import StudioError
from studio.bundle.checks import (
    Limits,
    artifact_of,
    check_entries,
    check_membership,
    mismatch_error,
    stream_member,
)
from studio.bundle.database import DatabaseFacts, check_database
from studio.bundle.manifest import MANIFEST_NAME, Manifest, read_manifest
from studio.core.files import owned_prefix, remove_leftovers
from studio.project import ARTIFACTS_DIR, DATABASE_NAME, LOGS_DIR, artifact_digest
from studio.store import Store


@dataclass(frozen=True)
class UnpackResult:
    path: Path
    project: str
    versions: int
    artifacts: int
    format_version: int
    app_version: str
    schema_revision: str  # as the bundle held it
    upgraded: bool  # the database was migrated to this studio's schema

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "project": self.project,
            "versions": self.versions,
            "artifacts": self.artifacts,
            "format_version": self.format_version,
            "app_version": self.app_version,
            "schema_revision": self.schema_revision,
            "upgraded": self.upgraded,
        }


@dataclass(frozen=True)
class _Plan:
    manifest: Manifest
    database: DatabaseFacts
    folders: dict[str, set[str]]


def unpack_bundle(bundle: Path, target: Path, *, limits: Limits | None = None) -> UnpackResult:
    """Unpack ``bundle`` into ``target``, which must not exist or be an empty folder."""
    bundle = Path(bundle).expanduser().absolute()
    target = Path(target).expanduser().absolute()
    _check_target(target)
    if not bundle.is_file():
        raise StudioError(f"{bundle} does not exist or is not a file")
    try:
        archive = zipfile.ZipFile(bundle)
    except (zipfile.BadZipFile, OSError) as exc:
        raise StudioError(
            f"{bundle.name} is not a studio bundle: it is not a readable zip file ({exc})"
        ) from None
    with archive:
        plan = inspect_bundle(archive, limits or Limits())
        _extract(archive, plan, target)
    return UnpackResult(
        path=target,
        project=plan.manifest.project,
        versions=plan.database.versions,
        artifacts=len(plan.folders),
        format_version=plan.manifest.format_version,
        app_version=plan.manifest.app_version,
        schema_revision=plan.database.revision,
        upgraded=plan.database.needs_upgrade,
    )


def default_unpack_folder(bundle: Path, fallback: Path) -> Path:
    """Where a bundle opened without a target becomes a project: a new folder named after it,
    beside it, or in ``fallback`` when the bundle's folder cannot be written (a read-only mount,
    a mail program's attachment cache). Never an existing folder with something in it."""
    bundle = Path(bundle).expanduser().absolute()
    parent = bundle.parent if os.access(bundle.parent, os.W_OK | os.X_OK) else Path(fallback)
    candidate, number = parent / bundle.stem, 2
    while candidate.is_symlink() or (
        candidate.exists() and (not candidate.is_dir() or any(candidate.iterdir()))
    ):
        candidate, number = parent / f"{bundle.stem} ({number})", number + 1
    return candidate


def inspect_bundle(archive: zipfile.ZipFile, limits: Limits) -> _Plan:
    """Every check, in the order that names the first problem most precisely; writes nothing."""
    infos = archive.infolist()
    check_entries(infos, limits)
    manifest = _read_manifest(archive, infos, limits)
    check_membership(infos, manifest)
    database, folders = _verify_members(archive, infos, manifest, limits)
    facts = check_database(database, manifest_revision=manifest.schema_revision, folders=folders)
    return _Plan(manifest, facts, folders)


def _check_target(target: Path) -> None:
    if target.is_symlink():
        raise StudioError(f"{target} is a link; unpack into a new or empty folder")
    if target.exists() and not target.is_dir():
        raise StudioError(f"{target} is a file; unpack into a new or empty folder")
    if target.is_dir() and any(target.iterdir()):
        raise StudioError(f"{target} is not empty; unpack into a new or empty folder")


def _read_manifest(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], limits: Limits) -> Manifest:
    info = next((i for i in infos if i.filename == MANIFEST_NAME), None)
    if info is None:
        raise StudioError(f"the bundle has no {MANIFEST_NAME}: it is not a studio bundle, or it is damaged")
    if info.file_size > limits.max_manifest_bytes:
        raise StudioError(f"the bundle's {MANIFEST_NAME} is implausibly large ({info.file_size} bytes)")
    return read_manifest(b"".join(stream_member(archive, info)))


def _verify_members(archive, infos, manifest: Manifest, limits: Limits) -> tuple[bytes, dict[str, set[str]]]:
    """Hash every member as it streams; keep the database's bytes to check it in memory."""
    database = b""
    entries: dict[str, list[tuple[str, str]]] = {}
    for info in sorted(infos, key=lambda i: i.filename):
        name = info.filename
        if name == MANIFEST_NAME:
            continue
        if name == DATABASE_NAME and info.file_size > limits.max_database_bytes:
            raise StudioError(
                f"the bundle's database is larger than the {limits.max_database_bytes} bytes allowed"
            )
        digest, kept = hashlib.sha256(), []
        for chunk in stream_member(archive, info):
            digest.update(chunk)
            if name == DATABASE_NAME:
                kept.append(chunk)
        if digest.hexdigest() != manifest.member(name).sha256:
            raise mismatch_error(name)
        if name == DATABASE_NAME:
            database = b"".join(kept)
        else:
            sha, inner = artifact_of(name)
            entries.setdefault(sha, []).append((inner, digest.hexdigest()))
    for sha, files in entries.items():
        if artifact_digest(files) != sha:
            raise StudioError(
                f"the artifact folder {sha[:12]}… does not hold the files its name promises; "
                "the bundle was altered or damaged after it was made"
            )
    return database, {sha: {inner for inner, _ in files} for sha, files in entries.items()}


def _extract(archive: zipfile.ZipFile, plan: _Plan, target: Path) -> None:
    created = _make_parents(target.parent)
    remove_leftovers(target.parent, f".{target.name}.unpacking-")
    staging = Path(tempfile.mkdtemp(prefix=owned_prefix(f".{target.name}.unpacking-"), dir=target.parent))
    try:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            if info.filename != MANIFEST_NAME:
                _extract_member(archive, info, staging, plan.manifest.member(info.filename).sha256)
        _flush_to_disk(staging)  # once for all files: a pulled plug never leaves a half-written project
        for folder in (staging / ARTIFACTS_DIR, staging / LOGS_DIR):
            folder.mkdir(exist_ok=True)
        for folder in [staging, *(p for p in staging.rglob("*") if p.is_dir())]:
            folder.chmod(0o755)
        if plan.database.needs_upgrade:
            Store.open(staging / DATABASE_NAME).close()  # Alembic, on the new copy only
        _move_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in reversed(created):
            _remove_if_empty(folder)
        raise


def _extract_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, staging: Path, sha256: str) -> None:
    destination = staging.joinpath(*info.filename.split("/"))
    destination.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with open(destination, "xb") as f:
        for chunk in stream_member(archive, info):
            digest.update(chunk)
            f.write(chunk)
    if digest.hexdigest() != sha256:
        raise StudioError(f"bundle member {info.filename!r} changed while it was being unpacked")
    destination.chmod(0o644)


def _flush_to_disk(staging: Path) -> None:
    """Everything written so far reaches the disk before the folder is renamed into place.

    One flush of the whole file system where the platform has it, instead of an fsync per file
    (tens of thousands of them took minutes).
    """
    if hasattr(os, "sync"):
        os.sync()
        return
    for path in staging.rglob("*"):
        if path.is_file():
            with open(path, "rb+") as f:
                os.fsync(f.fileno())


def _make_parents(folder: Path) -> list[Path]:
    """Create missing parent folders, returning the ones made (to remove again on failure)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir()
    return list(reversed(missing))


def _move_into_place(staging: Path, target: Path) -> None:
    try:
        if target.is_dir():
            target.rmdir()  # empty, as checked; a file that appeared since makes this fail
        os.rename(staging, target)
    except OSError as exc:
        raise StudioError(f"cannot put the project in {target}: {exc.strerror or exc}") from None


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()
