"""Files an attacker would craft, built for real: hostile `.studio` bundles and model files whose
code announces itself by writing a marker file when it runs.

Shared by the bundle tests, the window's tests and the refusal benchmark, so that each hole is
tried the same way wherever a user could open the file. Each bundle builder takes the members of
a real bundle (name → bytes) and the path to write; :data:`HOSTILE` pairs it with the sentence
the refusal must say.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import sqlite3
import stat
import struct
import subprocess
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

# -- bundles taken apart the way an attacker would -------------------------------------------------


def read_members(bundle: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(bundle) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def manifest_of(members: dict[str, bytes]) -> dict:
    return json.loads(members["manifest.json"])


def relist(members: dict[str, bytes], manifest: dict | None = None) -> dict[str, bytes]:
    """Recompute every hash and size in the manifest: what a careful tamperer would do."""
    manifest = manifest or manifest_of(members)
    manifest["members"] = [
        {"path": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        for name, data in sorted(members.items())
        if name != "manifest.json"
    ]
    return {**members, "manifest.json": json.dumps(manifest).encode()}


def write_bundle(path: Path, members: dict[str, bytes], *, modes: dict[str, int] | None = None) -> Path:
    """A zip of ``members``; ``modes`` sets a member's unix mode (a link, say)."""
    modes = modes or {}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = modes.get(name, 0o100644) << 16
            archive.writestr(info, data)
    return path


def artifact_members(members: dict[str, bytes], suffix: str = "") -> list[str]:
    return sorted(n for n in members if n.startswith("artifacts/") and n.endswith(suffix))


def with_extra(name: str, data: bytes = b"x", *, listed: bool = True) -> Callable:
    def make(members: dict, path: Path) -> Path:
        changed = {**members, name: data}
        return write_bundle(path, relist(changed) if listed else changed)

    return make


def _symlink(members: dict, path: Path) -> Path:
    name = artifact_members(members)[0] + ".link"
    changed = relist({**members, name: b"/etc/passwd"})
    return write_bundle(path, changed, modes={name: stat.S_IFLNK | 0o777})


def _bomb(members: dict, path: Path) -> Path:
    return write_bundle(path, relist({**members, artifact_members(members)[0] + ".pad": bytes(20 << 20)}))


def _bomb_of_small_members(members: dict, path: Path) -> Path:
    """Each member is under the per-member ratio floor; together they expand 300 MiB from about 300 KiB."""
    folder = artifact_members(members)[0].rsplit("/", 1)[0]
    small = bytes((1 << 20) - 1)
    return write_bundle(path, relist({**members, **{f"{folder}/pad{i}.bin": small for i in range(300)}}))


def _hundred_thousand_members(members: dict, path: Path) -> Path:
    folder = artifact_members(members)[0].rsplit("/", 1)[0]
    return write_bundle(path, {**members, **{f"{folder}/m{i}": b"" for i in range(100_000)}})


def _tampered_artifact(members: dict, path: Path) -> Path:
    name = artifact_members(members, ".onnx")[0]
    return write_bundle(path, {**members, name: members[name][:-1] + b"\x00"})


def _tampered_artifact_relisted(members: dict, path: Path) -> Path:
    name = artifact_members(members, ".onnx")[0]
    return write_bundle(path, relist({**members, name: members[name][:-1] + b"\x00"}))


def _tampered_database(members: dict, path: Path) -> Path:
    data = bytearray(members["studio.sqlite"])
    data[-100] ^= 0xFF
    return write_bundle(path, {**members, "studio.sqlite": bytes(data)})


def _future_format(members: dict, path: Path) -> Path:
    return write_bundle(path, relist(members, {**manifest_of(members), "format_version": 7}))


def _future_schema(members: dict, path: Path) -> Path:
    connection = sqlite3.connect(":memory:")
    connection.deserialize(members["studio.sqlite"])
    connection.execute("UPDATE alembic_version SET version_num = '0042_quantum_models'")
    connection.commit()
    database = connection.serialize()
    connection.close()
    manifest = {**manifest_of(members), "schema_revision": "0042_quantum_models"}
    return write_bundle(path, relist({**members, "studio.sqlite": database}, manifest))


def _database_changed_by(*statements: str) -> Callable:
    """The bundle's database after the sender's own SQL, with the manifest redone to match."""

    def make(members: dict, path: Path) -> Path:
        connection = sqlite3.connect(":memory:")
        connection.deserialize(members["studio.sqlite"])
        for statement in statements:
            connection.execute(statement)
        connection.commit()
        database = connection.serialize()
        connection.close()
        return write_bundle(path, relist({**members, "studio.sqlite": database}))

    return make


def _without(name: str) -> Callable:
    def make(members: dict, path: Path) -> Path:
        return write_bundle(path, {k: v for k, v in members.items() if k != name})

    return make


def _unlisted(members: dict, path: Path) -> Path:
    return write_bundle(path, {**members, artifact_members(members)[0] + ".extra": b"x"})


def _duplicate(members: dict, path: Path) -> Path:
    write_bundle(path, members)
    name = artifact_members(members)[0]
    with warnings.catch_warnings(), zipfile.ZipFile(path, "a") as archive:
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name it is asked to write
        archive.writestr(name, b"second copy")
    return path


def _case_clash(members: dict, path: Path) -> Path:
    name = artifact_members(members, ".onnx")[0]
    return write_bundle(path, relist({**members, name[:-5] + ".ONNX": b"x"}))


def _decomposed_twin(members: dict, path: Path) -> Path:
    folder = artifact_members(members)[0].rsplit("/", 1)[0]
    composed, decomposed = "caf\u00e9.txt", "cafe\u0301.txt"
    return write_bundle(
        path, relist({**members, f"{folder}/{composed}": b"a", f"{folder}/{decomposed}": b"b"})
    )


def _pickled_bomb_free_not_a_zip(members: dict, path: Path) -> Path:
    path.write_bytes(pickle.dumps({"not": "a zip"}))
    return path


def _lying_header(members: dict, path: Path) -> Path:
    """Header and manifest both say a member is half the size of the data that follows."""
    name = artifact_members(members, ".onnx")[0]
    manifest = manifest_of(relist(members))
    entry = next(m for m in manifest["members"] if m["path"] == name)
    entry["size"] //= 2
    write_bundle(path, {**members, "manifest.json": json.dumps(manifest).encode()})
    data = bytearray(path.read_bytes())
    central = data.find(b"PK\x01\x02")
    while data[central + 46 : central + 46 + len(name)] != name.encode():
        central = data.find(b"PK\x01\x02", central + 4)
    struct.pack_into("<I", data, central + 24, entry["size"])  # the uncompressed size field
    path.write_bytes(bytes(data))
    return path


HOSTILE = {
    "path traversal": (with_extra("../escaped.txt"), r"points outside the folder it is unpacked into"),
    "absolute path": (with_extra("/tmp/absolute.txt"), r"has an absolute path"),
    "backslashes": (with_extra("artifacts\\evil.txt"), r"uses backslashes"),
    "drive letter": (with_extra("C:/evil.txt"), r"names a drive letter"),
    "folder entry": (with_extra("artifacts/", b""), r"is a folder entry"),
    "symlink member": (_symlink, r"is a symbolic link"),
    "zip bomb": (_bomb, r"would expand \d+-fold when unpacked"),
    "zip bomb of small members": (_bomb_of_small_members, r"the bundle would expand \d+-fold when unpacked"),
    "a hundred thousand members": (
        _hundred_thousand_members,
        r"has 1000\d\d members, more than the 20000 allowed",
    ),
    "tampered artifact": (_tampered_artifact, r"artifacts/[0-9a-f]{64}/\w+\.onnx' does not match its hash"),
    "tampered artifact, manifest redone": (
        _tampered_artifact_relisted,
        r"does not hold the files its name promises",
    ),
    "tampered database": (
        _tampered_database,
        r"project database in the bundle \(studio.sqlite\) does not match",
    ),
    "a trigger in the database": (
        _database_changed_by(
            "CREATE TRIGGER rewrite AFTER UPDATE ON jobs BEGIN UPDATE model_versions SET notes = 'x'; END"
        ),
        r"it holds a trigger 'rewrite' that the studio does not make",
    ),
    "a view in the database": (
        _database_changed_by("CREATE VIEW everything AS SELECT * FROM model_versions"),
        r"it holds a view 'everything' that the studio does not make",
    ),
    "an extra table in the database": (
        _database_changed_by("CREATE TABLE payload (data BLOB)"),
        r"it holds a table 'payload' that the studio does not make",
    ),
    "an extra column in the database": (
        _database_changed_by("ALTER TABLE model_versions ADD COLUMN script TEXT"),
        r"the table 'model_versions' does not have the studio's columns",
    ),
    "weights outside the project": (
        _database_changed_by("UPDATE model_versions SET weights_file = '/etc/passwd' WHERE id = 1"),
        r"version v1 lists the file '/etc/passwd', which its folder in the bundle lacks",
    ),
    "future bundle format": (_future_format, r"made by a newer studio \(bundle format 7"),
    "future database schema": (_future_schema, r"made by a newer studio \(database schema 0042\)"),
    "missing manifest": (_without("manifest.json"), r"has no manifest.json"),
    "missing database": (_without("studio.sqlite"), r"lists 'studio.sqlite', which the bundle does not hold"),
    "member not in the manifest": (_unlisted, r"\.extra' is not listed in the manifest"),
    "not a project file": (with_extra("notes.txt"), r"'notes.txt' is not part of a studio project"),
    "duplicate member": (_duplicate, r"holds '.*' twice"),
    "names differing in case": (_case_clash, r"differing only in letter case"),
    "names differing in composition": (_decomposed_twin, r"differing only in letter case or accents"),
    "a name over 255 bytes": (with_extra("artifacts/" + "a" * 256), r"longer than file systems allow"),
    "not a zip": (_pickled_bomb_free_not_a_zip, r"not a readable zip file"),
    "header lying about a size": (_lying_header, r"is damaged: Bad CRC-32"),
}


def damage_the_middle(database: Path) -> None:
    """Garbage over a page in the middle of an SQLite file, as a failing disk or a crafted file leaves."""
    data = bytearray(database.read_bytes())
    page = 4096
    if len(data) < 4 * page:
        raise ValueError("the database is too small to damage a middle page")
    data[2 * page + 16 : 3 * page] = b"\xa5" * (page - 16)
    database.write_bytes(bytes(data))


# -- model files whose code writes a marker ---------------------------------------------------------


def torchscript_that_writes(path: Path, marker: Path) -> Path:
    """A TorchScript archive whose scripted ``__setstate__`` creates ``marker`` when the archive is
    loaded (``torch.jit.load`` calls it): the archive's own code, run by merely opening it."""
    from typing import Tuple  # noqa: UP035 - TorchScript reads the annotations below

    import torch

    class Scripted(torch.nn.Module):
        def __init__(self, marker: str) -> None:
            super().__init__()
            self.register_buffer("scale", torch.ones(3))
            self.marker = marker

        @torch.jit.export
        def __getstate__(self) -> Tuple[torch.Tensor, bool, str]:  # noqa: UP006
            return (self.scale, self.training, self.marker)

        @torch.jit.export
        def __setstate__(self, state: Tuple[torch.Tensor, bool, str]) -> None:  # noqa: UP006
            written = torch.from_file(state[2], shared=True, size=3)  # creates the file
            self.scale = state[0] + written * 0
            self.training = state[1]
            self.marker = state[2]

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.scale

    torch.jit.save(torch.jit.script(Scripted(str(marker))), str(path))
    return path


_ANNOUNCING_LIBRARY = """
#include <stdio.h>
__attribute__((constructor)) static void announce(void) {
    FILE *f = fopen(MARKER, "w");
    if (f) { fputs("native code from the archive ran", f); fclose(f); }
}
"""


def can_build_native_code() -> bool:
    return shutil.which("cc") is not None


def library_that_writes(path: Path, marker: Path) -> Path:
    """A shared library whose constructor creates ``marker`` as soon as it is loaded."""
    source = path.with_suffix(".c")
    source.write_text(_ANNOUNCING_LIBRARY)
    built = subprocess.run(
        ["cc", "-shared", "-fPIC", f'-DMARKER="{marker}"', str(source), "-o", str(path)],
        capture_output=True,
        text=True,
    )
    if built.returncode != 0:
        raise RuntimeError(f"cc failed: {built.stderr.strip()}")
    return path


def plain_program(path: Path) -> Path:
    """A plain ``torch.export`` archive: weights and a graph, no code."""
    import torch

    module = torch.nn.Sequential(torch.nn.Linear(4, 2)).eval()
    torch.export.save(torch.export.export(module, (torch.randn(1, 4),)), str(path))
    return path


def with_member(source: Path, target: Path, name: str, data: bytes) -> Path:
    """A copy of the ``.pt2`` archive ``source`` with one more member under its root folder."""
    with zipfile.ZipFile(source) as archive:
        root = archive.namelist()[0].split("/", 1)[0]
        with zipfile.ZipFile(target, "w") as out:
            for item in archive.infolist():
                out.writestr(item, archive.read(item))
            out.writestr(f"{root}/{name}", data)
    return target


def program_with_native_code(path: Path, marker: Path) -> Path:
    """A ``.pt2`` carrying an AOTInductor library that creates ``marker`` when loaded."""
    folder = path.parent
    library = library_that_writes(folder / f"{path.stem}-announce.so", marker)
    plain = plain_program(folder / f"{path.stem}-plain.pt2")
    return with_member(plain, path, "data/aotinductor/model/model.so", library.read_bytes())
