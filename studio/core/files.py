"""Hashing and crash-safe writes.

Every file the studio writes goes to a temporary name in the same folder and is renamed into
place, so that a crash or a pulled plug leaves either the old state or the new one, never half.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from studio.errors import StudioError

# A project folder's database file. Named here, below everything that looks for it (the command
# line, the window, bundles, the store's messages), so that none of them needs the store to know it.
DATABASE_NAME = "studio.sqlite"

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fsync_dir(folder: Path) -> None:
    """Make a folder's entries (a rename, a new file) durable."""
    with contextlib.suppress(OSError):  # not every filesystem lets a folder be opened
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` atomically."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target.parent, f".{target.name}.")
    fd, tmp_name = tempfile.mkstemp(prefix=owned_prefix(f".{target.name}."), suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def owned_prefix(prefix: str) -> str:
    """A temporary name's prefix that says which process made it (see ``remove_leftovers``)."""
    return f"{prefix}{os.getpid()}-"


def remove_leftovers(folder: Path, prefix: str) -> list[Path]:
    """Remove what a process that no longer runs left behind under ``owned_prefix(prefix)`` names.

    A copy killed half way (pulled plug, SIGKILL) leaves its hidden temporary file or folder; the
    next run in the same place clears it. Files of a process that still runs are left alone.
    """
    removed = []
    try:
        candidates = [p for p in Path(folder).iterdir() if p.name.startswith(prefix)]
    except OSError:
        return removed
    for path in candidates:
        owner = path.name[len(prefix) :].split("-", 1)[0]
        if not owner.isdigit() or _process_runs(int(owner)):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def atomic_write_bytes(target: Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: Path, text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


@contextlib.contextmanager
def staging_dir(parent: Path) -> Iterator[Path]:
    """A temporary folder inside ``parent``, removed afterwards unless the caller renamed it away."""
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".staging-", dir=parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_artifact_name(name: str) -> str:
    """A file name inside an artifact folder: relative, forward slashes, no way out of the folder."""
    parts = name.split("/") if isinstance(name, str) else []
    if (
        not parts
        or any(part in ("", ".", "..") for part in parts)
        or any(bad in name for bad in ("\\", ":", "\x00"))
    ):
        raise StudioError(f"{name!r} is not a plain relative file name inside a model folder")
    return name
