"""The store against real SQLite files: records in, the same records out, after a reopen too."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from studio.api import StudioError
from studio.core.models import TensorSpec
from studio.store import (
    DatabaseDamagedError,
    DatabaseLockedError,
    ModelVersion,
    SchemaError,
    Store,
    StoreError,
)
from studio.store.db import make_engine, make_session_factory, session_scope, translated_errors
from studio.store.orm import MeasurementModel, utcnow


def _add_results(store: Store, chain: list[ModelVersion]) -> None:
    digits = store.add_dataset(
        name="digits", kind="digits", spec={"split": "test"}, fingerprint="digits-test-360", samples=360
    )
    job = store.add_job(kind="measure", input_version_id=chain[2].id, dataset_id=digits.id, device="cpu")
    for version, top1 in zip(chain, (0.97, 0.95, 0.94), strict=True):
        store.add_measurement(
            version_id=version.id,
            dataset_id=digits.id,
            reference_version_id=chain[0].id if version is not chain[0] else None,
            job_id=job.id if version is chain[2] else None,
            device="cpu",
            runtime="onnxruntime",
            provider="CPUExecutionProvider",
            batch=1,
            threads=2,
            accuracy={"top1": top1},
            fidelity=None if version is chain[0] else {"cosine_min": 0.99},
            latency_p50_ms=1.5,
            latency_p90_ms=1.7,
            latency_p99_ms=2.5,
            latency_mean_ms=1.6,
            latency_std_ms=0.2,
            throughput_per_s=625.0,
            runs=200,
            samples=360,
            size_bytes=version.size_bytes,
            params=version.params,
            environment={"onnxruntime": "1.31", "cpu": "EPYC"},
        )


def test_everything_recorded_survives_close_and_reopen(
    store: Store, chain: list[ModelVersion], db_path: Path
) -> None:
    _add_results(store, chain)
    store.close()

    with Store.open(db_path) as reopened:
        assert reopened.project().name == "digits"
        assert [v.name for v in reopened.list_versions()] == ["baseline", "pruned", "int8"]
        assert reopened.get_version(chain[2].id) == chain[2]
        assert [v.name for v in reopened.lineage(chain[2].id)] == ["baseline", "pruned", "int8"]
        assert [v.name for v in reopened.children(chain[0].id)] == ["pruned"]
        assert reopened.children(chain[2].id) == []
        int8 = reopened.get_version(chain[2].id)
        assert int8.technique_params == {"per_channel": True, "calibration_samples": 64}
        assert int8.inputs == (TensorSpec("x", ("batch", 1, 8, 8), "float32"),)
        assert int8.files == ("model.onnx", "model.onnx.data")
        measurements = reopened.list_measurements()
        assert [m.accuracy["top1"] for m in measurements] == [0.97, 0.95, 0.94]
        assert [m.version_id for m in reopened.list_measurements(chain[1].id)] == [chain[1].id]
        assert reopened.list_measurements(chain[2].id)[0].job_id == reopened.list_jobs()[0].id
        assert reopened.get_dataset_by_name("digits").samples == 360


def test_records_are_plain_json_with_utc_times(store: Store, chain: list[ModelVersion]) -> None:
    _add_results(store, chain)
    records = [
        store.project(),
        *store.list_versions(),
        *store.list_datasets(),
        *store.list_measurements(),
        *store.list_jobs(),
    ]
    for record in records:
        payload = json.loads(json.dumps(record.to_dict()))
        created = datetime.fromisoformat(payload["created_at"])
        assert created.utcoffset() == timedelta(0)
        assert abs(created - datetime.now(timezone.utc)) < timedelta(minutes=1)
    version = chain[0].to_dict()
    assert version["inputs"] == [{"name": "x", "shape": ["batch", 1, 8, 8], "dtype": "float32"}]
    assert version["parent_id"] is None and version["trusted"] is False


def test_records_are_frozen(chain: list[ModelVersion]) -> None:
    with pytest.raises(AttributeError):
        chain[0].name = "renamed"  # type: ignore[misc]


def test_find_version_by_id_or_name(store: Store, chain: list[ModelVersion]) -> None:
    pruned = chain[1]
    for ref in (str(pruned.id), f"v{pruned.id}", f"V{pruned.id}", "pruned", "  pruned "):
        assert store.find_version(ref) == pruned


def test_find_version_refuses_unknown_and_ambiguous_refs(
    store: Store, chain: list[ModelVersion], fake_sha, version_fields
) -> None:
    with pytest.raises(StudioError, match="^there is no version 7 in this project$"):
        store.find_version("v7")
    with pytest.raises(StudioError, match="^there is no version named 'resnet' in this project$"):
        store.find_version("resnet")
    twin = store.add_version(**version_fields("pruned", artifact=fake_sha("other pruned")))
    with pytest.raises(StudioError, match=rf"2 versions are named 'pruned' \(v{chain[1].id}, v{twin.id}\)"):
        store.find_version("pruned")
    with pytest.raises(StudioError, match="by its id"):
        store.find_version("  ")


def test_get_version_names_the_missing_id(store: Store) -> None:
    with pytest.raises(StudioError, match="^there is no version 7 in this project$"):
        store.get_version(7)
    with pytest.raises(StudioError, match="no version 7"):
        store.lineage(7)


def test_a_version_whose_parent_is_missing_is_refused(
    store: Store, chain: list[ModelVersion], version_fields
) -> None:
    with pytest.raises(StudioError, match="there is no version 99"):
        store.add_version(**version_fields("orphan", parent_id=99))
    assert len(store.list_versions()) == 3


def test_find_version_by_artifact(store: Store, chain: list[ModelVersion], fake_sha) -> None:
    assert store.find_version_by_artifact(fake_sha("pruned")) == chain[1]
    assert store.find_version_by_artifact(fake_sha("never stored")) is None


def test_update_version_changes_only_name_and_notes(store: Store, chain: list[ModelVersion]) -> None:
    renamed = store.update_version(chain[1].id, name="pruned-50", notes="half the channels")
    assert (renamed.name, renamed.notes) == ("pruned-50", "half the channels")
    assert renamed.artifact == chain[1].artifact and renamed.parent_id == chain[0].id
    assert store.find_version("pruned-50") == renamed


def test_dataset_names_are_unique(store: Store, fake_sha) -> None:
    spec = {"path": "/data/x.npz"}
    first = store.add_dataset(name="val", kind="npz", spec=spec, fingerprint=fake_sha("x"), samples=10)
    with pytest.raises(StudioError, match="^there is already a dataset named 'val' in this project$"):
        store.add_dataset(name="val", kind="npz", spec=spec, fingerprint=fake_sha("y"), samples=10)
    assert store.find_dataset_by_fingerprint(fake_sha("x")) == first
    assert store.get_dataset(first.id) == first
    with pytest.raises(StudioError, match="^there is no dataset named 'test' in this project$"):
        store.get_dataset_by_name("test")


def test_jobs_move_through_their_states(store: Store, chain: list[ModelVersion]) -> None:
    job = store.add_job(kind="optimize", technique="quantize.static", params={"per_channel": True})
    assert (job.state, job.progress, job.started_at, job.finished_at) == ("queued", 0.0, None, None)
    running = store.update_job(job.id, state="running", device="cpu", log_path=Path("/tmp/job-1.log"))
    assert running.started_at is not None and running.finished_at is None
    assert running.log_path == "/tmp/job-1.log"
    store.update_job(job.id, progress=0.5, message="calibrating")
    done = store.update_job(job.id, state="succeeded", output_version_id=chain[2].id)
    assert done.finished and done.progress == 1.0 and done.finished_at >= done.started_at
    assert store.get_job(job.id) == done
    with pytest.raises(ValueError, match="job state"):
        store.update_job(job.id, state="paused")
    with pytest.raises(ValueError, match="between 0 and 1"):
        store.update_job(job.id, progress=1.5)
    with pytest.raises(ValueError, match="cannot change kind"):
        store.update_job(job.id, kind="export")
    with pytest.raises(StudioError, match="^there is no job 42 in this project$"):
        store.get_job(42)


def test_a_job_records_its_owner_and_a_first_heartbeat(store: Store, db_path: Path) -> None:
    before = utcnow()
    job = store.add_job(kind="optimize", owner_host="lab-3", owner_pid=4242, owner_started="boot:981")
    assert (job.owner_host, job.owner_pid, job.owner_started) == ("lab-3", 4242, "boot:981")
    assert job.owner_heartbeat is not None and job.owner_heartbeat >= before
    assert job.owner_heartbeat == job.created_at
    store.close()
    with Store.open(db_path) as reopened:
        assert reopened.get_job(job.id) == job
        unowned = reopened.add_job(kind="measure")
    assert (unowned.owner_host, unowned.owner_pid, unowned.owner_heartbeat) == (None, None, None)


def test_one_heartbeat_refreshes_unfinished_jobs_only(store: Store) -> None:
    jobs = [store.add_job(kind="optimize", owner_host="h", owner_pid=1) for _ in range(3)]
    store.update_job(jobs[1].id, state="running")
    store.update_job(jobs[2].id, state="failed", error="out of memory")
    _set_heartbeats(store, utcnow() - timedelta(hours=1))

    assert store.beat_jobs(job.id for job in jobs) == 2
    assert store.beat_jobs([]) == 0
    beats = {job.id: job.owner_heartbeat for job in store.list_jobs()}
    recent = utcnow() - timedelta(minutes=5)
    assert beats[jobs[0].id] > recent and beats[jobs[1].id] > recent
    assert beats[jobs[2].id] < recent  # an ended job's owner has nothing more to say


def test_interrupting_a_job_leaves_it_alone_if_it_changed_since_it_was_seen(store: Store) -> None:
    queued, running, ended, heard = (
        store.add_job(kind="optimize", owner_host="h", owner_pid=1) for _ in range(4)
    )
    running = store.update_job(running.id, state="running")
    seen_ended = store.get_job(ended.id)
    store.update_job(ended.id, state="succeeded")
    seen_heard = store.update_job(heard.id, state="running")
    _set_heartbeats(store, utcnow() + timedelta(seconds=1), heard.id)  # its owner spoke up since

    assert store.interrupt_job(store.get_job(queued.id), "not started")
    assert store.interrupt_job(running, "owner gone")
    assert not store.interrupt_job(seen_ended, "owner gone")
    assert not store.interrupt_job(seen_heard, "owner gone")
    assert not store.interrupt_job(running, "owner gone")  # once only

    after = {job.id: job for job in store.list_jobs()}
    assert (after[queued.id].state, after[queued.id].message) == ("interrupted", "not started")
    assert (after[running.id].state, after[running.id].message) == ("interrupted", "owner gone")
    assert after[running.id].finished_at is not None
    assert after[ended.id].state == "succeeded"
    assert after[heard.id].state == "running"


def _set_heartbeats(store: Store, when: datetime, job_id: int | None = None) -> None:
    """Move heartbeats in time, as an owner that spoke long ago (or just now) would have left them."""
    stamp = when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    where = "" if job_id is None else f" WHERE id = {int(job_id)}"
    with store.engine.begin() as connection:
        connection.execute(text(f"UPDATE jobs SET owner_heartbeat = :stamp{where}"), {"stamp": stamp})


def test_sqlite_settings_are_on_for_every_connection(store: Store, db_path: Path) -> None:
    with store.engine.connect() as connection:
        pragmas = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
        }
    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 10000, "synchronous": 1}
    raw = sqlite3.connect(db_path)  # WAL is a property of the file: any reader sees it
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()


def test_foreign_keys_are_enforced(store: Store, chain: list[ModelVersion]) -> None:
    sessions = make_session_factory(store.engine)
    orphan = MeasurementModel(
        version_id=999, device="cpu", runtime="onnxruntime", batch=1, environment={}, created_at=utcnow()
    )
    with (
        pytest.raises(StoreError, match="conflicts with what the project already holds"),
        session_scope(sessions) as session,
    ):
        session.add(orphan)
    with pytest.raises(StoreError, match="FOREIGN KEY"), session_scope(sessions) as session:
        # Lineage cannot be lost: a version with children cannot be deleted.
        session.execute(text("DELETE FROM model_versions WHERE id = :id"), {"id": chain[0].id})
    assert len(store.list_versions()) == 3


def test_ids_are_never_reused(store: Store, db_path: Path) -> None:
    raw = sqlite3.connect(db_path)
    try:
        ddl = dict(raw.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall())
    finally:
        raw.close()
    for table in ("model_versions", "datasets", "jobs", "measurements"):
        assert "AUTOINCREMENT" in ddl[table]


def test_a_locked_database_is_one_sentence(store: Store, db_path: Path) -> None:
    other = sqlite3.connect(db_path)
    other.execute("BEGIN IMMEDIATE")  # another studio in the middle of a write
    try:
        engine = make_engine(db_path)
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA busy_timeout=0")  # do not wait the full ten seconds
            with (
                pytest.raises(
                    DatabaseLockedError, match="^the project database is locked by another studio$"
                ),
                translated_errors(),
            ):
                connection.exec_driver_sql(
                    "INSERT INTO project (id, name, created_at, app_version) "
                    "VALUES (2, 'x', '2024-01-01', '0')"
                )
        engine.dispose()
    finally:
        other.rollback()
        other.close()


def test_the_store_works_from_another_thread(store: Store, chain: list[ModelVersion]) -> None:
    """The job manager records results off the window's thread."""
    seen: list[object] = []

    def work() -> None:
        try:
            job = store.add_job(kind="measure", input_version_id=chain[0].id)
            seen.append(store.get_job(job.id).state)
        except Exception as error:  # reported below, in the test's thread
            seen.append(error)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(timeout=30)
    assert seen == ["queued"]
    assert len(store.list_jobs()) == 1


def test_integrity_check_reports_ok_and_then_what_it_found(
    store: Store, chain: list[ModelVersion], db_path: Path
) -> None:
    assert store.integrity_check() == "ok"
    store.close()
    raw = sqlite3.connect(db_path)  # the name index now says it holds formats: its entries disagree
    try:
        raw.execute("PRAGMA writable_schema = ON")
        raw.execute(
            "UPDATE sqlite_master SET sql = 'CREATE INDEX ix_model_versions_name ON model_versions (format)' "
            "WHERE name = 'ix_model_versions_name'"
        )
        raw.commit()
    finally:
        raw.close()
    with Store.open(db_path) as damaged:
        assert damaged.integrity_check().splitlines() == [
            f"row {v.id} missing from index ix_model_versions_name" for v in chain
        ]


def test_a_damaged_database_is_one_sentence(store: Store, chain: list[ModelVersion], db_path: Path) -> None:
    store.close()
    data = bytearray(db_path.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    data[100:page_size] = b"\xa5" * (page_size - 100)  # the schema page, scrambled
    db_path.write_bytes(bytes(data))
    with pytest.raises(DatabaseDamagedError, match="^the project database is damaged: ") as caught:
        Store.open(db_path)
    assert "\n" not in str(caught.value)


def test_a_file_that_is_not_sqlite_is_refused(db_path: Path) -> None:
    db_path.write_bytes(b"PK\x03\x04 this is a zip file, not a database" * 40)
    before = db_path.read_bytes()
    with pytest.raises(
        SchemaError, match=r"is not a studio database \(it is not an SQLite file\)$"
    ) as caught:
        Store.open(db_path)
    assert "\n" not in str(caught.value)
    assert db_path.read_bytes() == before
    assert sorted(p.name for p in db_path.parent.iterdir()) == ["studio.sqlite"]


def test_a_missing_or_empty_database_needs_create(db_path: Path) -> None:
    with pytest.raises(StudioError, match="^there is no studio database at "):
        Store.open(db_path)
    assert not db_path.exists()
    db_path.touch()
    with pytest.raises(SchemaError, match="is an empty database, not a studio project$"):
        Store.open(db_path)
    with Store.open(db_path, create=True) as store:
        assert store.list_versions() == []


def test_another_programs_database_is_refused(db_path: Path) -> None:
    raw = sqlite3.connect(db_path)
    raw.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, path TEXT)")
    raw.commit()
    raw.close()
    for create in (False, True):
        with pytest.raises(SchemaError, match="^this database is not a studio project database"):
            Store.open(db_path, create=create)


def test_a_project_without_its_record_says_so(db_path: Path) -> None:
    with Store.open(db_path, create=True) as store:
        with pytest.raises(StoreError, match="has no project record"):
            store.project()
        assert store.set_project("a", "0.1.0").name == "a"
        assert store.set_project("b", "0.2.0").app_version == "0.2.0"
        assert store.project().name == "b"


def test_urls_work_as_well_as_paths(tmp_path: Path, version_fields) -> None:
    with Store.open("sqlite://", create=True) as memory:  # one shared in-memory database
        memory.set_project("scratch", "0.1.0")
        memory.add_version(**version_fields("baseline"))
        assert memory.find_version("baseline").id == 1
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    with Store.open(url, create=True) as shared:
        shared.set_project("team", "0.1.0")
    with Store.open(url) as shared:
        assert shared.project().name == "team"
