"""`.studio` bundles: a real project survives the trip, packing is byte-stable, and every kind of
hostile bundle is refused before anything is written."""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
from alembic import command
from hostile_files import HOSTILE, manifest_of, read_members, relist, with_extra, write_bundle

from studio.api import StudioError, UntrustedFileError
from studio.bundle import Limits, default_unpack_folder, migrate, pack_project, read_manifest, unpack_bundle
from studio.core.benchmark import BenchmarkSettings
from studio.core.models import load_torch_module
from studio.core.trust import grant, is_model_trusted
from studio.engine import Engine
from studio.project import Project
from studio.store import HEAD_REVISION
from studio.store.db import make_engine
from studio.store.migrate import alembic_config, migration_connection

FAST = BenchmarkSettings(min_runs=5, min_seconds=0.05, threads=1, warmup=2)


def _summary_without_paths(root: Path) -> dict:
    with Project.open(root) as project:
        summary = project.summary()
    summary["project"].pop("path")
    return summary


@pytest.fixture
def bundle(project_dir: Path, tmp_path: Path) -> Path:
    return pack_project(project_dir, tmp_path / "digits.studio").path


# -- round trip ------------------------------------------------------------------------------------


def test_a_project_packed_and_unpacked_elsewhere_is_the_same_project(
    project_dir: Path, tmp_path: Path
) -> None:
    packed = pack_project(project_dir, tmp_path / "share" / "digits.studio")
    result = unpack_bundle(packed.path, tmp_path / "elsewhere" / "digits")

    assert (result.versions, result.artifacts, result.upgraded) == (3, 3, False)
    assert _summary_without_paths(result.path) == _summary_without_paths(project_dir)
    with Project.open(result.path) as copy, Project.open(project_dir) as original:
        versions = copy.store.list_versions()
        assert all(copy.verify_artifact(v.artifact) for v in versions)
        child = next(v for v in versions if v.parent_id is not None)
        assert [v.name for v in copy.store.lineage(child.id)] == [
            v.name for v in original.store.lineage(child.id)
        ]
        assert copy.store.list_measurements() == original.store.list_measurements()
    assert sorted(p.name for p in result.path.iterdir()) == ["artifacts", "logs", "studio.sqlite"]


def test_packing_the_same_project_twice_gives_the_same_bytes(project_dir: Path, tmp_path: Path) -> None:
    first = pack_project(project_dir, tmp_path / "a.studio")
    with Project.open(project_dir) as project:  # opening writes nothing that changes the rows
        project.summary()
    for path in project_dir.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))  # file times must not leak in either
    second = pack_project(project_dir, tmp_path / "b.studio")
    assert first.path.read_bytes() == second.path.read_bytes()

    with zipfile.ZipFile(first.path) as archive:
        infos = archive.infolist()
    names = [i.filename for i in infos]
    assert names[0] == "manifest.json" and names[1:] == sorted(names[1:])
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {stat.S_IFREG | 0o644}
    manifest = read_manifest(read_members(first.path)["manifest.json"])
    assert manifest.schema_revision == HEAD_REVISION
    assert manifest.created.startswith(str(Project.open(project_dir).store.project().created_at.year))


def test_the_database_copy_is_consistent_compact_and_not_in_wal_mode(bundle: Path) -> None:
    data = read_members(bundle)["studio.sqlite"]
    assert data[:16] == b"SQLite format 3\x00"
    assert data[18:20] == b"\x01\x01"  # rollback journal: readable as a plain file anywhere
    connection = sqlite3.connect(":memory:")
    connection.deserialize(data)
    assert connection.execute("PRAGMA freelist_count").fetchone()[0] == 0
    assert connection.execute("SELECT count(*) FROM measurements").fetchone()[0] == 2
    connection.close()


def test_job_logs_and_owners_stay_behind(project_dir: Path, tmp_path: Path) -> None:
    """The receiver gets neither the sender's log files nor which machine and process ran a job;
    a job unfinished when the project was saved arrives interrupted."""
    with Project.open(project_dir) as project:
        log = project.logs_dir / "job-1.log"
        log.write_text("secret local paths\n")
        job = project.store.add_job(
            kind="export", log_path=log, owner_host="senders-laptop", owner_pid=os.getpid(), owner_started="1"
        )
        project.store.update_job(job.id, state="running")
        members = read_members(pack_project(project_dir, tmp_path / "p.studio").path)
    assert not [n for n in members if "log" in n]
    assert b"senders-laptop" not in members["studio.sqlite"]
    unpacked = unpack_bundle(tmp_path / "p.studio", tmp_path / "copy").path
    with Project.open(unpacked) as copy:
        received = copy.store.get_job(job.id)
    assert received.log_path is None and received.state == "interrupted"
    assert (received.owner_host, received.owner_pid, received.owner_started) == (None, None, None)
    assert list((unpacked / "logs").iterdir()) == []


def test_a_bundle_is_never_written_into_the_model_store(project_dir: Path) -> None:
    folder = next((project_dir / "artifacts").iterdir())
    with pytest.raises(StudioError, match="inside the project's model store"):
        pack_project(project_dir, folder / "p.studio")
    assert not (folder / "p.studio").exists()


def test_a_damaged_artifact_is_not_packed(project_dir: Path, tmp_path: Path) -> None:
    model = next(project_dir.glob("artifacts/*/*.onnx"))
    model.write_bytes(model.read_bytes()[:-10])
    with pytest.raises(StudioError, match=r"missing or damaged .* cannot be packed"):
        pack_project(project_dir, tmp_path / "p.studio")
    assert not (tmp_path / "p.studio").exists()


# -- schema and format versions --------------------------------------------------------------------


def _downgraded_database(data: bytes, tmp_path: Path) -> bytes:
    path = tmp_path / "old.sqlite"
    path.write_bytes(data)
    engine = make_engine(path)
    with migration_connection(engine) as connection:
        command.downgrade(alembic_config(connection), "0001_initial")
    engine.dispose()
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=DELETE")
    connection.close()
    return path.read_bytes()


def test_an_older_schema_is_migrated_in_the_new_folder_only(bundle: Path, tmp_path: Path) -> None:
    members = read_members(bundle)
    members["studio.sqlite"] = _downgraded_database(members["studio.sqlite"], tmp_path)
    manifest = manifest_of(members)
    manifest["schema_revision"] = "0001_initial"
    old = write_bundle(tmp_path / "old.studio", relist(members, manifest))
    before = old.read_bytes()

    result = unpack_bundle(old, tmp_path / "upgraded")

    assert result.upgraded and result.schema_revision == "0001_initial"
    assert old.read_bytes() == before
    with Project.open(result.path) as project:
        assert len(project.store.list_versions()) == 3
    revision = sqlite3.connect(result.path / "studio.sqlite").execute(
        "SELECT version_num FROM alembic_version"
    )
    assert revision.fetchone()[0] == HEAD_REVISION


def test_manifest_migrations_run_in_a_chain() -> None:
    """Format 1 is the only one today; a future format 2 adds one function to the chain."""

    def one_to_two(raw: dict) -> dict:
        files = raw.pop("files")
        return {**raw, "format_version": 2, "members": [{"path": p, **v} for p, v in sorted(files.items())]}

    old = {"format": "model-optimization-studio-bundle", "format_version": 1, "files": {"a": {"size": 1}}}
    assert migrate(old, migrations={1: one_to_two}, current=2)["members"] == [{"path": "a", "size": 1}]
    with pytest.raises(StudioError, match="bundle format 1 is too old"):
        migrate(old, migrations={}, current=2)
    with pytest.raises(StudioError, match=r"made by a newer studio \(bundle format 3"):
        migrate({**old, "format_version": 3}, migrations={1: one_to_two}, current=2)


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_bundle_is_refused_and_nothing_is_written(case: str, bundle: Path, tmp_path: Path) -> None:
    make, message = HOSTILE[case]
    hostile = make(read_members(bundle), tmp_path / "hostile.studio")
    place = tmp_path / "unpack-here"
    place.mkdir()
    with pytest.raises(StudioError, match=message):
        unpack_bundle(hostile, place / "nested" / "project")
    assert list(place.iterdir()) == []
    assert not (tmp_path / "escaped.txt").exists()


def test_size_limits_are_enforced_on_the_whole_and_per_member(bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(StudioError, match="would unpack to .* more than the 1000 allowed"):
        unpack_bundle(bundle, tmp_path / "a", limits=Limits(max_total_bytes=1000))
    with pytest.raises(StudioError, match="more than the 500000 allowed"):
        unpack_bundle(bundle, tmp_path / "b", limits=Limits(max_member_bytes=500_000))
    with pytest.raises(StudioError, match="has 6 members, more than the 2 allowed"):
        unpack_bundle(bundle, tmp_path / "c", limits=Limits(max_members=2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits.studio", "project"]


def test_the_target_must_be_new_or_empty(bundle: Path, tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(StudioError, match="is not empty"):
        unpack_bundle(bundle, busy)
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert unpack_bundle(bundle, empty).path == empty
    assert (empty / "studio.sqlite").is_file()


# -- nothing from a bundle runs -------------------------------------------------------------------


class _Payload:
    """Unpickling this creates a file: proof that something ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickled_module_in_a_bundle_is_accepted_but_never_unpickled(
    project_dir: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "PAYLOAD-RAN"
    evil = tmp_path / "model.pt"
    evil.write_bytes(pickle.dumps(_Payload(marker), protocol=2))
    with Project.open(project_dir) as project:
        sha = project.store_artifact([(evil, "model.pt")])
        project.store.add_version(
            name="shared module",
            format="torch_pickle",
            artifact=sha,
            main_file="model.pt",
            files=["model.pt"],
            size_bytes=evil.stat().st_size,
            inputs=[{"name": "input", "shape": [1, 1, 28, 28], "dtype": "float32"}],
            technique="import",
        )
    bundle = pack_project(project_dir, tmp_path / "shared.studio").path

    unpacked = unpack_bundle(bundle, tmp_path / "received").path
    with Project.open(unpacked) as project:
        version = project.store.find_version("shared module")
        assert project.verify_artifact(version.artifact)
        assert project.summary()["versions"][-1]["name"] == "shared module"
        assert not is_model_trusted(project.model_files(version))
        with pytest.raises(UntrustedFileError, match="pickled PyTorch module"):
            project.inspect(version)
        with pytest.raises(UntrustedFileError), Engine.for_project(project) as engine:
            engine.measure(version, settings=FAST)
    assert not marker.exists()


def test_an_architecture_file_from_a_bundle_stays_untrusted_until_trusted_here(
    made_project, project_dir: Path, tmp_path: Path
) -> None:
    """The author trusted the .py on their machine; this test's data folder is a fresh machine."""
    unpacked = unpack_bundle(pack_project(project_dir, tmp_path / "p.studio").path, tmp_path / "copy").path
    with Project.open(unpacked) as project:
        version = project.store.find_version("architecture")
        files = project.model_files(version)
        assert version.trusted  # what the author decided, recorded in the project…
        assert not is_model_trusted(files)  # …is not a decision on this machine
        with (
            pytest.raises(UntrustedFileError, match=r"digits_cnn.py is Python code"),
            Engine.for_project(project) as engine,
        ):
            engine.measure(version, settings=FAST)
        with pytest.raises(UntrustedFileError):
            load_torch_module(files, trusted=is_model_trusted(files))
        grant(files)
        module = load_torch_module(files, trusted=is_model_trusted(files))
        assert sum(p.numel() for p in module.parameters()) == version.params


# -- the command line ------------------------------------------------------------------------------


def test_pack_and_unpack_from_the_command_line(studio_cli, project_dir: Path, tmp_path: Path) -> None:
    packed = studio_cli("pack", project_dir, tmp_path / "cli.studio", "--json")
    assert packed.returncode == 0, packed.stderr
    assert packed.json()["versions"] == 3
    unpacked = studio_cli("unpack", tmp_path / "cli.studio", tmp_path / "cli-copy")
    assert unpacked.returncode == 0, unpacked.stderr
    assert "stay untrusted on this machine" in unpacked.stdout
    assert _summary_without_paths(tmp_path / "cli-copy") == _summary_without_paths(project_dir)


def test_unpack_without_a_folder_makes_a_new_one_beside_the_file(
    studio_cli, bundle: Path, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shared = inbox / "resnet.studio"
    shutil.copy(bundle, shared)
    (inbox / "resnet").mkdir()
    (inbox / "resnet" / "notes.txt").write_text("someone else's folder")
    (inbox / "resnet (2)").mkdir()  # empty: a fine place to unpack
    assert default_unpack_folder(shared, tmp_path / "fallback") == inbox / "resnet (2)"

    result = studio_cli("unpack", shared, "--json")
    assert result.returncode == 0, result.stderr
    assert Path(result.json()["path"]) == inbox / "resnet (2)"
    assert (inbox / "resnet (2)" / "studio.sqlite").is_file()
    assert (inbox / "resnet" / "notes.txt").read_text() == "someone else's folder"
    assert default_unpack_folder(shared, tmp_path / "fallback") == inbox / "resnet (3)"


@contextlib.contextmanager
def _as_an_ordinary_user():
    """Root may write into any folder; for root, the check runs as 'nobody' (its real user id is
    what os.access reads) and the user id is given back afterwards."""
    if os.geteuid() != 0:
        yield
        return
    os.setreuid(65534, 0)
    try:
        yield
    finally:
        os.setreuid(0, 0)


def test_a_bundle_in_a_read_only_folder_unpacks_into_the_fallback(bundle: Path, tmp_path: Path) -> None:
    place = Path(tempfile.mkdtemp())  # the test's own folder may be closed to an ordinary user
    locked, writable, fallback = place / "attachments", place / "downloads", place / "projects"
    try:
        place.chmod(0o755)
        for folder in (locked, writable):
            folder.mkdir()
            shutil.copy(bundle, folder / "resnet.studio")
        locked.chmod(0o555)
        writable.chmod(0o777)
        with _as_an_ordinary_user():
            assert default_unpack_folder(locked / "resnet.studio", fallback) == fallback / "resnet"
            assert default_unpack_folder(writable / "resnet.studio", fallback) == writable / "resnet"
    finally:
        if locked.exists():
            locked.chmod(0o755)
        shutil.rmtree(place)


def test_the_command_line_refuses_a_hostile_bundle_in_one_sentence(
    studio_cli, bundle: Path, tmp_path: Path
) -> None:
    hostile = with_extra("../escaped.txt")(read_members(bundle), tmp_path / "evil.studio")
    result = studio_cli("unpack", hostile, tmp_path / "target")
    assert result.returncode == 2
    assert result.stderr.startswith("studio: error: bundle member '../escaped.txt' points outside")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "target").exists() and not (tmp_path / "escaped.txt").exists()


def _dead_pid() -> int:
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(finished.stdout)


def test_what_a_killed_pack_or_unpack_left_behind_is_cleared_by_the_next(
    studio_cli, project_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    dead, alive = _dead_pid(), os.getpid()
    stale_file = out / f".digits.studio.{dead}-abc.tmp"
    stale_file.write_bytes(b"half a bundle")
    stale_scratch = Path(tempfile.gettempdir()) / f"studio-pack-{dead}-xyz"
    stale_scratch.mkdir()
    running = out / f".digits.studio.{alive}-def.tmp"  # a pack still under way elsewhere
    running.write_bytes(b"")
    stale_staging = tmp_path / f".opened.unpacking-{dead}-ghi"
    (stale_staging / "artifacts").mkdir(parents=True)

    assert studio_cli("pack", project_dir, out / "digits.studio").returncode == 0
    assert studio_cli("unpack", out / "digits.studio", tmp_path / "opened").returncode == 0

    assert not stale_file.exists() and not stale_scratch.exists() and not stale_staging.exists()
    assert running.exists()
    assert sorted(p.name for p in out.iterdir()) == [running.name, "digits.studio"]
