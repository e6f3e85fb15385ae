"""Project folders: one database and the model files it refers to.

A project is a folder holding ``studio.sqlite`` and ``artifacts/``. Each model version's files
live in ``artifacts/<sha256>/`` under their own names, where the sha256 covers every file's
name and content. A folder is built under a ``.staging-`` name and renamed into place in one
step, so a crash leaves either no folder or a complete one, and the same files stored twice
share one folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from studio import __version__
from studio.api import StudioError
from studio.core.files import (
    DATABASE_NAME,
    check_artifact_name,
    fsync_dir,
    owned_prefix,
    remove_leftovers,
    sha256_file,
    staging_dir,
)
from studio.store import Measurement, ModelVersion, Store

if TYPE_CHECKING:
    from studio.core.graph import ModelInfo
    from studio.core.models import ModelFiles
    from studio.versions import CheckedModel

ARTIFACTS_DIR = "artifacts"
LOGS_DIR = "logs"
STAGING_PREFIX = ".staging-"
# A folder being deleted is renamed under this name first; the next open clears one a crash left.
DELETING_PREFIX = f"{STAGING_PREFIX}deleted-"
GRAPH_CACHE_DIR = ".graph-cache"  # PyTorch versions converted to ONNX for the graph view
# A staging folder untouched this long belongs to a crashed writer, not to one still copying.
STALE_STAGING_SECONDS = 600

_CHUNK = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")
_VERSION_ID = re.compile(r"[vV]?\d+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclasses.dataclass(frozen=True)
class DeletedVersion:
    """What deleting a version removed (or, from ``preview_delete_version``, would remove)."""

    id: int
    name: str
    measurements_removed: int
    jobs_detached: int  # finished jobs kept as history, no longer linked to the version
    artifact_removed: bool
    bytes_freed: int
    shared_with: tuple[int, ...] = ()  # versions that keep using its files, when they stay

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "shared_with": list(self.shared_with)}


class Project:
    """An open project folder; use ``create``, ``open`` or ``open_or_create``, and close it after."""

    def __init__(self, root: Path, store: Store) -> None:
        self._root = root
        self._store = store

    # -- opening and closing -------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, name: str | None = None) -> Project:
        """Make a new project in ``path`` (an empty or new folder); an existing project is opened."""
        root = Path(path).expanduser().resolve()
        if root.exists() and not root.is_dir():
            raise StudioError(f"{root} is a file, not a folder for a project")
        if not (root / DATABASE_NAME).exists():
            if root.is_dir() and any(root.iterdir()):
                raise StudioError(
                    f"{root} is not empty and is not a studio project; choose an empty or new folder"
                )
            try:
                root.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StudioError(
                    f"cannot create the project folder {root}: {error.strerror or error}"
                ) from error
        return cls._open(root, name)

    @classmethod
    def open(cls, path: Path) -> Project:
        """Open an existing project; leftovers of crashed copies are cleared away."""
        root = Path(path).expanduser().resolve()
        if not root.is_dir() or not (root / DATABASE_NAME).is_file():
            raise StudioError(f"{root} is not a studio project (no {DATABASE_NAME})")
        return cls._open(root)

    @classmethod
    def open_or_create(cls, path: Path, name: str | None = None) -> Project:
        """The project in ``path``, made first if the folder is new or empty."""
        return cls.create(path, name)

    @classmethod
    def _open(cls, root: Path, name: str | None = None) -> Project:
        _check_not_emptied(root)
        # create=True: a studio.sqlite left empty by a creation cut short is finished, not refused.
        store = Store.open(root / DATABASE_NAME, create=True)
        project = cls(root, store)
        try:
            project._repair((name or "").strip() or root.name)
            from studio.jobs.manager import interrupt_abandoned_jobs

            interrupt_abandoned_jobs(store)  # jobs whose studio died, and only those: not a live one's
        except BaseException:
            store.close()
            raise
        return project

    def _repair(self, name: str) -> None:
        """Finish what a crash may have cut short: a missing project row, folders, staging copies."""
        if self._store.find_project() is None:
            self._store.set_project(name, __version__)
        for folder in (self.artifacts_dir, self.logs_dir):
            folder.mkdir(exist_ok=True)
        remove_leftovers(self.artifacts_dir, DELETING_PREFIX)  # a delete cut short: files of no version
        remove_stale_staging(self.artifacts_dir)

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Project({str(self._root)!r})"

    # -- places --------------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        return self._root

    @property
    def store(self) -> Store:
        return self._store

    @property
    def database_path(self) -> Path:
        return self._root / DATABASE_NAME

    # -- where its models run ------------------------------------------------------------------

    @property
    def target_device(self) -> str:
        """Where the project's models will be deployed ("cpu" unless set): every step's before/after
        measurement runs there, so that the speed-ups it prints are the ones that count."""
        return self._store.project().target_device

    def set_target_device(self, device: str) -> str:
        """Set the target device, refused in one sentence when this machine cannot measure there
        (no such GPU, or an ONNX Runtime without CUDA, which would time the CPU instead)."""
        from studio.core.runtime import check_provider, parse_device, provider_name

        device = parse_device(device)
        check_provider(provider_name(None, device), device)
        return self._store.set_target_device(device).target_device

    @property
    def artifacts_dir(self) -> Path:
        return self._root / ARTIFACTS_DIR

    @property
    def logs_dir(self) -> Path:
        """Where job logs go, one file per job."""
        return self._root / LOGS_DIR

    def artifact_dir(self, sha: str) -> Path:
        if not _SHA256.fullmatch(sha):
            raise StudioError(f"'{sha}' is not an artifact id (a sha256 in hex)")
        return self.artifacts_dir / sha

    def version_files_dir(self, version: ModelVersion) -> Path:
        return self.artifact_dir(version.artifact)

    def version_path(self, version: ModelVersion) -> Path:
        """The version's main file (the one a loader opens), inside its artifact folder."""
        return self.version_files_dir(version) / version.main_file

    # -- models --------------------------------------------------------------------------------

    def import_model(
        self,
        path: Path,
        *,
        name: str | None = None,
        weights: Path | None = None,
        trust: bool = False,
        input_shapes: list[tuple[int, ...]] | None = None,
        input_roles: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        """Copy a model file into the project as a new root version (or the one already holding it).

        The file is read end to end first; a refused file leaves the project untouched.
        """
        from studio.versions import check_model_file

        checked = check_model_file(
            path, weights=weights, trust=trust, input_shapes=input_shapes, input_roles=input_roles
        )
        return self.add_checked_model(checked, name=name)

    def add_checked_model(
        self,
        checked: CheckedModel,
        *,
        name: str | None = None,
        parent: ModelVersion | None = None,
        technique: str = "import",
        technique_params: dict | None = None,
        notes: str = "",
        details: dict | None = None,
    ) -> ModelVersion:
        sources = checked.files.sources()
        sha = self.store_artifact(sources)
        if parent is None and technique == "import":
            existing = self._store.find_version_by_artifact(sha)
            if existing is not None:
                return existing  # the same files imported again: one version, not two
        info, files = checked.info, checked.files
        weights_name = sources[-1][1] if files.weights is not None else None
        return self._store.add_version(
            name=name or files.main.stem,
            format=files.format.value,
            artifact=sha,
            main_file=sources[0][1],
            files=[n for _, n in sources],
            size_bytes=info.size_bytes,
            parent_id=None if parent is None else parent.id,
            weights_file=weights_name,
            params=info.params,
            macs=info.macs,
            inputs=info.inputs,
            outputs=info.outputs,
            technique=technique,
            technique_params=technique_params or {},
            source_path=str(files.main.resolve()) if technique == "import" else None,
            source_sha256=checked.source_sha256,
            trusted=checked.trusted,
            notes=notes,
            details=details,
        )

    def find_model(
        self,
        ref: str | Path,
        *,
        weights: Path | None = None,
        trust: bool = False,
        input_shapes: list[tuple[int, ...]] | None = None,
        input_roles: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        """A version by id or name; a model file is imported first (or found, if it already was)."""
        from studio.versions import looks_like_path

        text = str(ref)
        if isinstance(ref, Path) or looks_like_path(text):
            return self.import_model(
                Path(text), weights=weights, trust=trust, input_shapes=input_shapes, input_roles=input_roles
            )
        try:
            version = self._store.find_version(text)
        except StudioError:
            if Path(text).suffix:
                raise StudioError(f"'{text}' is neither a model file nor a version of this project") from None
            raise
        if trust:  # e.g. a version from a colleague's bundle: the user trusts its code on this machine
            from studio.core.trust import grant

            grant(self.model_files(version))
        return version

    def model_files(self, version: ModelVersion) -> ModelFiles:
        from studio.versions import files_of

        return files_of(version, self.version_files_dir(version))

    def inspect(self, version: ModelVersion) -> ModelInfo:
        from studio.core.graph import inspect_model
        from studio.core.input_roles import inherit_roles
        from studio.core.trust import is_model_trusted
        from studio.versions import input_shapes_of

        files = self.model_files(version)
        info = inspect_model(files, trusted=is_model_trusted(files), input_shapes=input_shapes_of(version))
        return dataclasses.replace(info, inputs=inherit_roles(info.inputs, version.inputs))

    # -- renaming and deleting ------------------------------------------------------------------

    def rename_version(self, version_id: int, name: str) -> ModelVersion:
        """Give a version a new name; its id, files and lineage stay what they are."""
        return self._store.update_version(version_id, name=_checked_name(version_id, name))

    def preview_delete_version(self, version_id: int) -> DeletedVersion:
        """What ``delete_version`` would remove, or its refusal: for a confirmation to show first."""
        version = self._store.get_version(version_id)
        users = self._store.version_users(version_id)
        refusal = users.refusal()
        if refusal is not None:
            raise StudioError(refusal)
        shared = bool(users.same_artifact)
        return DeletedVersion(
            id=version.id,
            name=version.name,
            measurements_removed=users.measurements,
            jobs_detached=users.finished_jobs,
            artifact_removed=not shared,
            bytes_freed=0 if shared else _size_of(self._artifact_paths(version.artifact)),
            shared_with=users.same_artifact,
        )

    def delete_version(self, version_id: int) -> DeletedVersion:
        """Delete a version that no other version, measurement or unfinished job needs.

        Its measurements go with it; its finished jobs stay as history. The database changes in
        one transaction; its files go after the commit, and only when no other version uses them,
        so a crash in between leaves files of no version (cleared at the next open), never a
        version without its files.
        """
        version = self._store.get_version(version_id)
        self.preview_delete_version(version_id)  # every refusal, before anything changes
        removed, detached = self._store.delete_version(version_id)
        freed = self._remove_unused_artifact(version.artifact)
        shared = () if freed is not None else self._versions_in(version.artifact)
        return DeletedVersion(
            id=version.id,
            name=version.name,
            measurements_removed=removed,
            jobs_detached=detached,
            artifact_removed=freed is not None,
            bytes_freed=freed or 0,
            shared_with=shared,
        )

    def _versions_in(self, sha: str) -> tuple[int, ...]:
        return tuple(v.id for v in self._store.list_versions() if v.artifact == sha)

    def _remove_unused_artifact(self, sha: str) -> int | None:
        """Remove an artifact folder no version uses, with its graph conversion; the bytes freed,
        or None when a version still uses it.

        The folder is first renamed to a leftover name in one step, so that it never stands half
        deleted under its sha (where an import of the same files would take it as stored).
        """
        if self._store.find_version_by_artifact(sha) is not None:
            return None
        paths = self._artifact_paths(sha)
        freed = _size_of(paths)
        folder = self.artifact_dir(sha)
        if folder.is_dir():
            try:
                aside = Path(tempfile.mkdtemp(prefix=owned_prefix(DELETING_PREFIX), dir=self.artifacts_dir))
                os.rename(folder, aside / sha)
            except OSError:  # the version is gone already; its files stay, unused, as they were
                return None
            if self._store.find_version_by_artifact(sha) is not None:  # imported again meanwhile
                os.rename(aside / sha, folder)
                aside.rmdir()
                return None
            fsync_dir(self.artifacts_dir)
            shutil.rmtree(aside, ignore_errors=True)
        for cached in paths[1:]:
            with contextlib.suppress(OSError):
                cached.unlink(missing_ok=True)
        return freed

    def _artifact_paths(self, sha: str) -> list[Path]:
        """An artifact folder, then the graph view's ONNX conversion of it (and its weights file)."""
        cached = self._root / GRAPH_CACHE_DIR / f"{sha}.onnx"
        return [self.artifact_dir(sha), cached, cached.with_name(f"{cached.name}.data")]

    # -- measurements --------------------------------------------------------------------------

    def measurement_report(self, measurement: Measurement) -> dict:
        from studio.measurements import measurement_report

        version = self._store.get_version(measurement.version_id)
        dataset = None if measurement.dataset_id is None else self._store.get_dataset(measurement.dataset_id)
        return measurement_report(measurement, version, dataset)

    def summary(self) -> dict:
        """Every version with its lineage and its latest measurement: what `studio versions` shows."""
        from studio.measurements import speeds_against_parents

        measurements = self._store.list_measurements()
        versions = self._store.list_versions()
        latest: dict[int, Measurement] = {m.version_id: m for m in measurements}
        speeds = speeds_against_parents(versions, measurements)
        return {
            "project": {"path": str(self._root), **self._store.project().to_dict()},
            "versions": [
                {
                    **v.to_dict(),
                    "latest_measurement": None
                    if v.id not in latest
                    else self.measurement_report(latest[v.id]),
                    "speed_vs_parent": speeds.get(v.id),
                }
                for v in versions
            ],
        }

    # -- artifacts -----------------------------------------------------------------------------

    def store_artifact(self, sources: Sequence[tuple[Path, str]]) -> str:
        """Copy files into the project as one content-addressed folder; return its sha256.

        ``sources`` pairs each file on disk with its name inside the folder. Everything is checked
        before anything is written; the folder appears under its sha only once it is complete.
        """
        entries = _checked_sources(sources)
        with staging_dir(self.artifacts_dir) as staging:
            digests = [(name, _copy_into(source, staging, name)) for source, name in entries]
            sha = artifact_digest(digests)
            os.chmod(staging, 0o755)  # the staging folder is private; the stored one is not
            _fsync_tree(staging)
            self._place(staging, sha)
        fsync_dir(self.artifacts_dir)
        return sha

    def _place(self, staging: Path, sha: str) -> None:
        """Rename a complete staging folder to its sha, keeping an intact copy already there."""
        final = self.artifacts_dir / sha
        if final.is_dir() and self.verify_artifact(sha):
            return  # the same files are stored already; the staging copy is discarded
        try:
            if final.exists():  # a damaged copy: move it aside in one step, then put the good one in
                aside = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}damaged-", dir=self.artifacts_dir))
                os.rename(final, aside / sha)
                shutil.rmtree(aside, ignore_errors=True)
            os.rename(staging, final)
        except OSError as error:
            if final.is_dir() and self.verify_artifact(sha):
                return  # another studio stored the same files at the same moment
            raise StudioError(f"cannot store model files in {self.artifacts_dir}: {error}") from error

    def verify_artifact(self, sha: str) -> bool:
        """Whether the folder still holds exactly the files it was stored with."""
        folder = self.artifact_dir(sha)
        try:
            return folder.is_dir() and hash_folder(folder) == sha
        except OSError:
            return False


# -- names and hashes ------------------------------------------------------------------------------


def _check_not_emptied(root: Path) -> None:
    """An empty database beside model files was lost, not new: starting afresh would orphan them."""
    database = root / DATABASE_NAME
    artifacts = root / ARTIFACTS_DIR
    if not database.is_file() or database.stat().st_size > 0 or not artifacts.is_dir():
        return
    if any(artifacts.iterdir()):
        raise StudioError(
            f"the project database {database} is empty but the project holds model files: it was lost or "
            "truncated, and nothing was written to it. Restore it from a backup or from the project's "
            ".studio file"
        )


def _checked_name(version_id: int, name: str) -> str:
    """A new version name, refused in one sentence where it could not be used to name the version."""
    name = name.strip()
    if not name:
        raise StudioError(f"the new name for v{version_id} is empty; give it a name like 'int8-small'")
    if _CONTROL.search(name):
        raise StudioError(f"a version name is one line of plain text; {name!r} holds a control character")
    if _VERSION_ID.fullmatch(name):
        raise StudioError(
            f"'{name}' reads as a version id, so it could not name v{version_id}; "
            "choose a name like 'int8-small'"
        )
    return name


def _size_of(paths: Iterable[Path]) -> int:
    """Bytes in these files and folders; those that are missing count nothing."""
    total = 0
    for path in paths:
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
        elif path.is_dir() and not path.is_symlink():
            total += sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return total


def artifact_digest(entries: Iterable[tuple[str, str]]) -> str:
    """The folder's sha256: over sorted lines "name<TAB>sha256(file)<LF>"."""
    lines = "".join(f"{name}\t{digest}\n" for name, digest in sorted(entries))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def hash_folder(folder: Path) -> str:
    """Rehash a stored folder the way ``store_artifact`` hashed it (links are never stored)."""
    entries = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            raise OSError(f"{path} is a link")
        if path.is_file():
            entries.append((path.relative_to(folder).as_posix(), sha256_file(path)))
    return artifact_digest(entries)


def remove_stale_staging(artifacts_dir: Path, *, older_than: float = STALE_STAGING_SECONDS) -> int:
    """Delete staging folders left by crashed copies; recent ones may belong to a live writer."""
    removed = 0
    if not artifacts_dir.is_dir():
        return removed
    now = time.time()
    for entry in artifacts_dir.glob(f"{STAGING_PREFIX}*"):
        try:
            if now - _newest_mtime(entry) < older_than:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:  # gone already, or not ours to remove: try again at the next open
            continue
        removed += 1
    return removed


# -- helpers ---------------------------------------------------------------------------------------


def _checked_sources(sources: Sequence[tuple[Path, str]]) -> list[tuple[Path, str]]:
    if not sources:
        raise StudioError("a model needs at least one file")
    entries = [(Path(source), check_artifact_name(name)) for source, name in sources]
    _check_unique_names([name for _, name in entries])
    for source, _ in entries:
        if not source.is_file():
            raise StudioError(f"{source} does not exist or is not a file")
    return entries


def _check_unique_names(names: list[str]) -> None:
    """Two names that one file system would take for the same file (or a file and a folder) clash."""
    folded = [name.casefold() for name in names]
    folders = {"/".join(name.split("/")[:i]) for name in folded for i in range(1, name.count("/") + 1)}
    for name, key in zip(names, folded, strict=True):
        if folded.count(key) > 1 or key in folders:
            raise StudioError(f"the file name {name!r} clashes with another one in the same model folder")


def _copy_into(source: Path, folder: Path, name: str) -> str:
    """Copy one file, hashing the bytes as they are written; return their sha256."""
    target = folder / name
    digest = hashlib.sha256()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(source, "rb") as fin, open(target, "xb") as fout:
            while chunk := fin.read(_CHUNK):
                digest.update(chunk)
                fout.write(chunk)
            fout.flush()
            os.fsync(fout.fileno())
    except OSError as error:
        raise StudioError(f"cannot copy {source} into the project: {error.strerror or error}") from error
    return digest.hexdigest()


def _newest_mtime(entry: Path) -> float:
    newest = entry.lstat().st_mtime
    if entry.is_dir() and not entry.is_symlink():
        for folder, _, files in os.walk(entry):
            for name in files:
                try:
                    newest = max(newest, os.lstat(os.path.join(folder, name)).st_mtime)
                except OSError:
                    continue
    return newest


def _fsync_tree(folder: Path) -> None:
    """Make the folder entries durable before the rename publishes them."""
    for path, _, _ in os.walk(folder):
        fsync_dir(Path(path))
