"""The bundle's table of contents, and how manifests of older bundle formats are brought up to date.

Each format change adds one small function to ``MIGRATIONS`` that turns a manifest of version N
into one of version N+1; reading applies them in order, so a bundle saved years ago opens
through the same chain as one saved yesterday. Format 1 is the only one so far: the chain is
empty, but it runs on every read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from studio.api import StudioError

FORMAT_NAME = "model-optimization-studio-bundle"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"

Migration = Callable[[dict[str, Any]], dict[str, Any]]

# {N: function turning a version-N manifest into a version N+1 one}
MIGRATIONS: dict[int, Migration] = {}


class MemberEntry(BaseModel):
    """One file of the bundle, with what its bytes must hash to."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    path: str = Field(min_length=1, max_length=4096)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    format: Literal["model-optimization-studio-bundle"]
    format_version: int
    app_version: str
    created: str  # the project's own creation time, so that packing twice gives the same bytes
    project: str
    schema_revision: str
    members: list[MemberEntry]

    def to_json(self) -> bytes:
        return (json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n").encode("utf-8")

    def member(self, path: str) -> MemberEntry:
        """The entry for one path, in constant time: a bundle may list tens of thousands."""
        return self._by_path[path]

    @cached_property
    def _by_path(self) -> dict[str, MemberEntry]:
        return {m.path: m for m in self.members}


def read_manifest(
    data: bytes,
    *,
    migrations: Mapping[int, Migration] = MIGRATIONS,
    current: int = FORMAT_VERSION,
) -> Manifest:
    """Parse, migrate and validate a manifest; every problem is one StudioError sentence."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise StudioError(f"the bundle's manifest is not valid JSON: {exc}") from None
    raw = migrate(raw, migrations=migrations, current=current)
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "its top level"
        raise StudioError(f"the bundle's manifest is malformed at {where}: {first['msg']}") from None
    paths = [m.path for m in manifest.members]
    if len(paths) != len(set(paths)):
        duplicate = next(p for p in paths if paths.count(p) > 1)
        raise StudioError(f"the bundle's manifest lists {duplicate!r} twice")
    return manifest


def migrate(
    raw: Any, *, migrations: Mapping[int, Migration] = MIGRATIONS, current: int = FORMAT_VERSION
) -> dict[str, Any]:
    """Step a manifest through the migration chain up to ``current``."""
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if raw is None or not isinstance(raw, dict) or raw.get("format") != FORMAT_NAME:
        raise StudioError("the file is not a studio bundle (its manifest does not name the bundle format)")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise StudioError("the bundle's manifest has no valid format_version")
    if version > current:
        raise StudioError(
            f"this bundle was made by a newer studio (bundle format {version}, this studio reads up to "
            f"{current}); update the studio to open it"
        )
    while version < current:
        step = migrations.get(version)
        if step is None:
            raise StudioError(f"bundle format {version} is too old for this studio to read")
        raw = step(dict(raw))
        if raw.get("format_version") != version + 1:
            raise RuntimeError(
                f"the migration from bundle format {version} did not produce format {version + 1}"
            )
        version += 1
    return raw


def schema_number(revision: str) -> str:
    """'0005_tensorrt_engines' → '0005', for messages."""
    match = re.match(r"\d+", revision)
    return match.group(0) if match else revision
