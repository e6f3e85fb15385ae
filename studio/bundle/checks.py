"""What a bundle must be before a byte of it is written: checks that read, and never extract.

A `.studio` file may come from anyone. Its member names could climb out of the target folder,
its entries could be links, its sizes could be a decompression bomb, its files could have been
swapped after packing. Each of these is refused here with a sentence that names the member.
"""

from __future__ import annotations

import re
import stat
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from studio.api import StudioError
from studio.bundle.manifest import MANIFEST_NAME, Manifest
from studio.core.files import check_artifact_name
from studio.project import ARTIFACTS_DIR, DATABASE_NAME

_CHUNK = 1 << 20
_MAX_NAME_BYTES = 255
_DRIVE = re.compile(r"^[A-Za-z]:")
_ARTIFACT_MEMBER = re.compile(rf"^{ARTIFACTS_DIR}/([0-9a-f]{{64}})/(.+)$")
_ALTERED = "the bundle was altered or damaged after it was made"


@dataclass(frozen=True)
class Limits:
    """Bounds on what unpacking may write; generous for real projects, fatal to zip bombs."""

    max_members: int = 20_000  # a project of hundreds of versions and jobs holds a few thousand
    max_member_bytes: int = 32 * 1024**3
    max_total_bytes: int = 64 * 1024**3
    max_ratio: float = 200.0  # uncompressed / compressed size of one member
    ratio_floor_bytes: int = 1 << 20  # members smaller than this cannot be bombs, whatever their ratio
    # All members together: weights barely compress and a database about 10-fold, so a real project
    # expands a few-fold; many small members that each pass the per-member floor must not add up.
    max_total_ratio: float = 50.0
    total_ratio_floor_bytes: int = 256 << 20
    max_manifest_bytes: int = 16 << 20
    max_database_bytes: int = 1 << 30


def check_entries(infos: list[zipfile.ZipInfo], limits: Limits) -> None:
    """Names, entry types, duplicates and sizes, from the zip's central directory alone."""
    if len(infos) > limits.max_members:
        raise StudioError(f"the bundle has {len(infos)} members, more than the {limits.max_members} allowed")
    for info in infos:
        check_member_name(info.filename)
        _check_entry_type(info)
    _check_unique([info.filename for info in infos])
    total = packed = 0
    for info in infos:
        _check_size(info, limits)
        total += info.file_size
        packed += info.compress_size
    if total > limits.max_total_bytes:
        raise StudioError(
            f"the bundle would unpack to {total} bytes, more than the {limits.max_total_bytes} allowed"
        )
    if total > max(limits.total_ratio_floor_bytes, packed * limits.max_total_ratio):
        raise StudioError(
            f"the bundle would expand {total / max(packed, 1):.0f}-fold when unpacked ({total} bytes from "
            f"{packed}; more than {limits.max_total_ratio:.0f}-fold): a decompression bomb?"
        )


def check_member_name(name: str) -> None:
    """A relative path with forward slashes that stays inside the folder it is unpacked into."""
    shown = repr(name)
    if not name:
        raise StudioError("the bundle has a member with an empty name")
    if "\\" in name:
        raise StudioError(f"bundle member {shown} uses backslashes in its path")
    if name.startswith("/"):
        raise StudioError(f"bundle member {shown} has an absolute path")
    if _DRIVE.match(name):
        raise StudioError(f"bundle member {shown} names a drive letter")
    if any(ord(c) < 32 for c in name):
        raise StudioError(f"bundle member {shown} has control characters in its name")
    parts = name.split("/")
    if ".." in parts:
        raise StudioError(f"bundle member {shown} points outside the folder it is unpacked into ('..')")
    if name.endswith("/"):
        raise StudioError(f"bundle member {shown} is a folder entry; bundles hold only files")
    if any(part in ("", ".") for part in parts):
        raise StudioError(f"bundle member {shown} has an empty or '.' part in its path")
    if any(len(part.encode("utf-8")) > _MAX_NAME_BYTES for part in parts):
        raise StudioError(f"bundle member {shown} has a name longer than file systems allow (255 bytes)")


def _check_entry_type(info: zipfile.ZipInfo) -> None:
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if stat.S_ISLNK(mode):
        raise StudioError(f"bundle member {info.filename!r} is a symbolic link; bundles hold only files")
    if kind not in (0, stat.S_IFREG):
        raise StudioError(f"bundle member {info.filename!r} is not a regular file")
    if info.flag_bits & 0x1:
        raise StudioError(f"bundle member {info.filename!r} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise StudioError(
            f"bundle member {info.filename!r} uses a compression method the studio does not read"
        )


def _check_unique(names: list[str]) -> None:
    """Exact duplicates, and names that a case-insensitive or normalising file system (macOS,
    Windows) would take for one file: the same letters in other case, or composed otherwise."""
    seen: dict[str, str] = {}
    for name in names:
        key = unicodedata.normalize("NFC", name).casefold()
        if key in seen:
            other = seen[key]
            what = (
                "twice" if other == name else f"twice, differing only in letter case or accents ({other!r})"
            )
            raise StudioError(f"the bundle holds {name!r} {what}")
        seen[key] = name
    folders = {"/".join(key.split("/")[:i]) for key in seen for i in range(1, key.count("/") + 1)}
    clash = next((seen[key] for key in seen if key in folders), None)
    if clash is not None:
        raise StudioError(f"bundle member {clash!r} is both a file and a folder")


def _check_size(info: zipfile.ZipInfo, limits: Limits) -> None:
    name = info.filename
    if info.file_size > limits.max_member_bytes:
        raise StudioError(
            f"bundle member {name!r} is {info.file_size} bytes, more than the {limits.max_member_bytes} allowed"
        )
    if info.file_size >= limits.ratio_floor_bytes:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits.max_ratio:
            raise StudioError(
                f"bundle member {name!r} would expand {ratio:.0f}-fold when unpacked "
                f"(more than {limits.max_ratio:.0f}): a decompression bomb?"
            )


def stream_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """The member's bytes, counted as they come: never more than its header promised."""
    produced = 0
    try:
        with archive.open(info) as f:
            while chunk := f.read(_CHUNK):
                produced += len(chunk)
                if produced > info.file_size:
                    raise StudioError(f"bundle member {info.filename!r} holds more data than its header says")
                yield chunk
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise StudioError(f"bundle member {info.filename!r} is damaged: {exc}") from None
    if produced != info.file_size:
        raise StudioError(f"bundle member {info.filename!r} holds less data than its header says")


def check_membership(infos: list[zipfile.ZipInfo], manifest: Manifest) -> None:
    """The manifest and the zip list the same files, of the same sizes, in the project layout."""
    in_zip = {info.filename: info for info in infos if info.filename != MANIFEST_NAME}
    listed = {m.path: m for m in manifest.members}
    for name in sorted(in_zip):
        if name not in listed:
            raise StudioError(f"bundle member {name!r} is not listed in the manifest; {_ALTERED}")
    for name in sorted(listed):
        if name not in in_zip:
            raise StudioError(f"the manifest lists {name!r}, which the bundle does not hold")
        if listed[name].size != in_zip[name].file_size:
            raise StudioError(f"bundle member {name!r} is not the size the manifest says; {_ALTERED}")
        check_layout(name)
    if DATABASE_NAME not in listed:
        raise StudioError(f"the bundle holds no project database ({DATABASE_NAME})")


def check_layout(name: str) -> None:
    if name == DATABASE_NAME:
        return
    match = _ARTIFACT_MEMBER.match(name)
    if match is None:
        raise StudioError(
            f"bundle member {name!r} is not part of a studio project "
            f"(a bundle holds {DATABASE_NAME} and {ARTIFACTS_DIR}/<sha256>/<files>)"
        )
    check_artifact_name(match.group(2))


def artifact_of(name: str) -> tuple[str, str] | None:
    """('sha', 'name inside the folder') for an artifact member, None for the database."""
    match = _ARTIFACT_MEMBER.match(name)
    return None if match is None else (match.group(1), match.group(2))


def mismatch_error(name: str) -> StudioError:
    if name == DATABASE_NAME:
        return StudioError(
            f"the project database in the bundle ({DATABASE_NAME}) does not match its hash in the manifest; {_ALTERED}"
        )
    return StudioError(f"bundle member {name!r} does not match its hash in the manifest; {_ALTERED}")
