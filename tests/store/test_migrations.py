"""Schema versions: the migrations build exactly the ORM's tables, and old databases still open.

When the schema changes, add a migration and a dump of a database saved by the schema before it
(like ``SCHEMA_0001`` below), and extend ``test_a_database_saved_by_schema_0001_...``.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from studio.store import HEAD_REVISION, SchemaError, Store
from studio.store.db import make_engine
from studio.store.migrate import MIGRATIONS_DIR, alembic_config, check_schema, migration_connection, upgrade
from studio.store.orm import BaseModel


def _revision_in(db_path: Path) -> str:
    raw = sqlite3.connect(db_path)
    try:
        return raw.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    finally:
        raw.close()


def _schema_differences(engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, BaseModel.metadata)


def test_head_revision_is_the_single_head_with_readable_ids() -> None:
    scripts = ScriptDirectory.from_config(alembic_config())
    assert scripts.get_heads() == [HEAD_REVISION]
    for script in scripts.walk_revisions():
        assert re.fullmatch(r"\d{4}_[a-z0-9_]+", script.revision)
        assert Path(script.path).stem == script.revision


def test_migrations_at_head_build_exactly_the_orm_tables(tmp_path: Path) -> None:
    """A change to orm.py without a migration fails here."""
    engine = make_engine(tmp_path / "studio.sqlite")
    upgrade(engine)
    assert _schema_differences(engine) == []
    engine.dispose()


def test_upgrade_twice_changes_nothing_and_downgrade_round_trips(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "studio.sqlite")
    upgrade(engine)
    upgrade(engine)
    assert check_schema(engine) == HEAD_REVISION
    with migration_connection(engine) as connection:
        command.downgrade(alembic_config(connection), "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    upgrade(engine)
    assert _schema_differences(engine) == []
    engine.dispose()


def test_a_database_from_a_newer_studio_is_refused(tmp_path: Path) -> None:
    db_path = tmp_path / "studio.sqlite"
    Store.open(db_path, create=True).close()
    raw = sqlite3.connect(db_path)
    raw.execute("UPDATE alembic_version SET version_num = '0005_tensorrt_engines'")
    raw.commit()
    raw.close()
    message = (
        "this project was saved by a newer version of the studio (schema 0005); update the studio to open it"
    )
    with pytest.raises(SchemaError, match=f"^{re.escape(message)}$"):
        Store.open(db_path)
    assert _revision_in(db_path) == "0005_tensorrt_engines"  # refused, not touched


def test_connections_keep_foreign_keys_on_after_an_upgrade(tmp_path: Path) -> None:
    """The upgrade turns foreign keys off on its connection; the pool must not hand that one out."""
    with Store.open(tmp_path / "studio.sqlite", create=True) as store, store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_a_failed_migration_leaves_the_schema_as_it_was(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "studio.sqlite")
    upgrade(engine)
    with pytest.raises(RuntimeError, match="power cut"), migration_connection(engine) as connection:
        connection.exec_driver_sql("CREATE TABLE half_done (id INTEGER)")
        connection.exec_driver_sql("DROP TABLE project")
        raise RuntimeError("power cut")
    assert "half_done" not in inspect(engine).get_table_names()
    assert "project" in inspect(engine).get_table_names()
    engine.dispose()


def test_the_developer_command_line_sees_no_pending_change(tmp_path: Path) -> None:
    """`alembic check` with the shipped alembic.ini: what a developer runs before a release."""
    ini = MIGRATIONS_DIR.parent / "alembic.ini"
    db = tmp_path / "dev.sqlite"
    for args in (["upgrade", "head"], ["check"]):
        done = subprocess.run(
            [sys.executable, "-m", "alembic", "-c", str(ini), "-x", f"db={db}", *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
    assert "No new upgrade operations detected" in done.stdout + done.stderr
    assert _revision_in(db) == HEAD_REVISION


def test_a_database_saved_by_schema_0001_opens_with_its_data(tmp_path: Path) -> None:
    db_path = tmp_path / "studio.sqlite"
    raw = sqlite3.connect(db_path)
    raw.executescript(SCHEMA_0001)
    raw.close()

    with Store.open(db_path) as store:
        project = store.project()
        assert project.name == "digits 0001"
        assert project.created_at == datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
        assert [v.name for v in store.lineage(2)] == ["baseline", "int8"]
        assert store.get_version(2).technique_params == {"per_channel": True}
        assert store.get_version(1).inputs[0].shape == ("batch", 64)
        (measurement,) = store.list_measurements(2)
        assert (measurement.accuracy, measurement.job_id, measurement.reference_version_id) == (
            {"top1": 0.95},
            1,
            1,
        )
        assert store.get_job(1).state == "succeeded"
        assert store.get_dataset_by_name("digits").samples == 360
        assert store.integrity_check() == "ok"
        assert (
            store.add_version(
                name="int8-again",
                format="onnx",
                artifact="c" * 64,
                main_file="m.onnx",
                files=["m.onnx"],
                size_bytes=1,
            ).id
            == 3
        )  # ids continue after the ones the old studio handed out
    assert _revision_in(db_path) == HEAD_REVISION


def test_a_database_saved_by_schema_0003_opens_and_its_old_jobs_have_no_owner(tmp_path: Path) -> None:
    db_path = tmp_path / "studio.sqlite"
    raw = sqlite3.connect(db_path)
    raw.executescript(SCHEMA_0003)
    raw.close()

    with Store.open(db_path) as store:
        assert [(j.id, j.state) for j in store.list_jobs()] == [
            (1, "succeeded"),
            (2, "running"),
            (3, "queued"),
        ]
        left = store.get_job(2)
        assert (left.owner_host, left.owner_pid, left.owner_started, left.owner_heartbeat) == (None,) * 4
        assert (left.progress, left.message, left.params) == (0.4, "epoch 20", {"epochs": 50})
        owned = store.add_job(kind="measure", owner_host="lab-3", owner_pid=77, owner_started="b:1")
        assert owned.id == 4 and owned.owner_pid == 77 and owned.owner_heartbeat is not None
        assert store.integrity_check() == "ok"
    assert _revision_in(db_path) == HEAD_REVISION


def test_the_job_owner_migration_downgrades_and_upgrades_keeping_the_jobs(tmp_path: Path) -> None:
    db_path = tmp_path / "studio.sqlite"
    with Store.open(db_path, create=True) as store:
        store.set_project("p", "0.1.0")
        job = store.add_job(kind="optimize", owner_host="lab-3", owner_pid=77, owner_started="b:1")
        store.update_job(job.id, state="running", progress=0.5)
        engine = store.engine
        with migration_connection(engine) as connection:
            command.downgrade(alembic_config(connection), "0003_job_cancel_request")
        columns = {c["name"] for c in inspect(engine).get_columns("jobs")}
        assert not {c for c in columns if c.startswith("owner_")}
        assert "cancel_requested" in columns
        with engine.connect() as connection:
            rows = connection.exec_driver_sql("SELECT id, state, progress FROM jobs").fetchall()
        assert rows == [(job.id, "running", 0.5)]
        upgrade(engine)
        assert _schema_differences(engine) == []
        again = store.get_job(job.id)
        assert (again.state, again.owner_pid, again.owner_heartbeat) == ("running", None, None)
        assert store.add_job(kind="measure").id == job.id + 1  # ids still never reused


# A project database written by schema 0001_initial (sqlite3 .dump). Never edit: it stands for
# files that users already have on disk.
SCHEMA_0001 = """
BEGIN TRANSACTION;
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL,
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO "alembic_version" VALUES('0001_initial');
CREATE TABLE datasets (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	name VARCHAR NOT NULL,
	kind VARCHAR NOT NULL,
	spec JSON NOT NULL,
	fingerprint VARCHAR NOT NULL,
	samples INTEGER NOT NULL,
	created_at DATETIME NOT NULL,
	CONSTRAINT uq_datasets_name UNIQUE (name)
);
INSERT INTO "datasets" VALUES(1,'digits','digits','{"split": "test"}','18ac3e7343f016890c510e93f935261169d9e3f565436429830faf0934f4f8e4',360,'2024-05-01 12:00:02.000000');
CREATE TABLE jobs (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	kind VARCHAR NOT NULL,
	technique VARCHAR,
	params JSON NOT NULL,
	state VARCHAR NOT NULL,
	input_version_id INTEGER,
	output_version_id INTEGER,
	dataset_id INTEGER,
	device VARCHAR,
	progress FLOAT NOT NULL,
	message TEXT NOT NULL,
	error TEXT,
	log_path TEXT,
	created_at DATETIME NOT NULL,
	started_at DATETIME,
	finished_at DATETIME,
	CONSTRAINT fk_jobs_dataset_id_datasets FOREIGN KEY(dataset_id) REFERENCES datasets (id) ON DELETE RESTRICT,
	CONSTRAINT fk_jobs_input_version_id_model_versions FOREIGN KEY(input_version_id) REFERENCES model_versions (id) ON DELETE RESTRICT,
	CONSTRAINT fk_jobs_output_version_id_model_versions FOREIGN KEY(output_version_id) REFERENCES model_versions (id) ON DELETE RESTRICT
);
INSERT INTO "jobs" VALUES(1,'optimize','quantize.dynamic','{"per_channel": true}','succeeded',1,2,NULL,'cpu',1.0,'',NULL,NULL,'2024-05-01 12:00:03.000000','2024-05-01 12:00:04.000000','2024-05-01 12:00:09.000000');
CREATE TABLE measurements (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	version_id INTEGER NOT NULL,
	dataset_id INTEGER,
	reference_version_id INTEGER,
	job_id INTEGER,
	device VARCHAR NOT NULL,
	runtime VARCHAR NOT NULL,
	provider VARCHAR,
	batch INTEGER NOT NULL,
	threads INTEGER,
	accuracy JSON,
	fidelity JSON,
	latency_p50_ms FLOAT,
	latency_p90_ms FLOAT,
	latency_p99_ms FLOAT,
	latency_mean_ms FLOAT,
	latency_std_ms FLOAT,
	throughput_per_s FLOAT,
	runs INTEGER,
	samples INTEGER,
	size_bytes BIGINT,
	params BIGINT,
	environment JSON NOT NULL,
	created_at DATETIME NOT NULL,
	CONSTRAINT fk_measurements_dataset_id_datasets FOREIGN KEY(dataset_id) REFERENCES datasets (id) ON DELETE RESTRICT,
	CONSTRAINT fk_measurements_job_id_jobs FOREIGN KEY(job_id) REFERENCES jobs (id) ON DELETE SET NULL,
	CONSTRAINT fk_measurements_reference_version_id_model_versions FOREIGN KEY(reference_version_id) REFERENCES model_versions (id) ON DELETE RESTRICT,
	CONSTRAINT fk_measurements_version_id_model_versions FOREIGN KEY(version_id) REFERENCES model_versions (id) ON DELETE RESTRICT
);
INSERT INTO "measurements" VALUES(1,2,1,1,1,'cpu','onnxruntime','CPUExecutionProvider',1,2,'{"top1": 0.95}','{"cosine_min": 0.99}',0.1,NULL,NULL,NULL,NULL,9000.0,100,360,400,650,'{"onnxruntime": "1.31"}','2024-05-01 12:00:10.000000');
CREATE TABLE model_versions (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	name VARCHAR NOT NULL,
	parent_id INTEGER,
	format VARCHAR NOT NULL,
	artifact VARCHAR NOT NULL,
	main_file VARCHAR NOT NULL,
	weights_file VARCHAR,
	files JSON NOT NULL,
	size_bytes BIGINT NOT NULL,
	params BIGINT,
	macs BIGINT,
	inputs JSON NOT NULL,
	outputs JSON NOT NULL,
	technique VARCHAR,
	technique_params JSON NOT NULL,
	source_path TEXT,
	source_sha256 VARCHAR,
	trusted BOOLEAN NOT NULL,
	created_at DATETIME NOT NULL,
	notes TEXT NOT NULL,
	CONSTRAINT fk_model_versions_parent_id_model_versions FOREIGN KEY(parent_id) REFERENCES model_versions (id) ON DELETE RESTRICT
);
INSERT INTO "model_versions" VALUES(1,'baseline',NULL,'onnx','ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb','model.onnx',NULL,'["model.onnx"]',1000,650,NULL,'[{"name": "x", "shape": ["batch", 64], "dtype": "float32"}]','[{"name": "y", "shape": ["batch", 10], "dtype": "float32"}]','import','{}','/data/digits.onnx','25a6634263c1b1f6fc4697a04e2b9904ea4b042a89af59dc93ec1f5d44848a26',0,'2024-05-01 12:00:00.500000','');
INSERT INTO "model_versions" VALUES(2,'int8',1,'onnx','3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d','model.onnx',NULL,'["model.onnx"]',1000,NULL,NULL,'[{"name": "x", "shape": ["batch", 64], "dtype": "float32"}]','[{"name": "y", "shape": ["batch", 10], "dtype": "float32"}]','quantize.dynamic','{"per_channel": true}',NULL,NULL,0,'2024-05-01 12:00:09.000000','');
CREATE TABLE project (
	id INTEGER NOT NULL,
	name VARCHAR NOT NULL,
	created_at DATETIME NOT NULL,
	app_version VARCHAR NOT NULL,
	CONSTRAINT pk_project PRIMARY KEY (id)
);
INSERT INTO "project" VALUES(1,'digits 0001','2024-05-01 12:00:00.000000','0.1.0');
CREATE INDEX ix_model_versions_artifact ON model_versions (artifact);
CREATE INDEX ix_model_versions_name ON model_versions (name);
CREATE INDEX ix_model_versions_parent_id ON model_versions (parent_id);
CREATE INDEX ix_jobs_dataset_id ON jobs (dataset_id);
CREATE INDEX ix_jobs_input_version_id ON jobs (input_version_id);
CREATE INDEX ix_jobs_output_version_id ON jobs (output_version_id);
CREATE INDEX ix_jobs_state ON jobs (state);
CREATE INDEX ix_measurements_dataset_id ON measurements (dataset_id);
CREATE INDEX ix_measurements_job_id ON measurements (job_id);
CREATE INDEX ix_measurements_reference_version_id ON measurements (reference_version_id);
CREATE INDEX ix_measurements_version_id ON measurements (version_id);
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('model_versions',2);
INSERT INTO "sqlite_sequence" VALUES('datasets',1);
INSERT INTO "sqlite_sequence" VALUES('jobs',1);
INSERT INTO "sqlite_sequence" VALUES('measurements',1);
COMMIT;
"""


# A project database written by schema 0003_job_cancel_request (sqlite3 .dump), with a job that an
# older studio left running and one it left queued. Never edit: it stands for files users have.
SCHEMA_0003 = """
BEGIN TRANSACTION;
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL,
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO "alembic_version" VALUES('0003_job_cancel_request');
CREATE TABLE datasets (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	name VARCHAR NOT NULL,
	kind VARCHAR NOT NULL,
	spec JSON NOT NULL,
	fingerprint VARCHAR NOT NULL,
	samples INTEGER NOT NULL,
	created_at DATETIME NOT NULL,
	CONSTRAINT uq_datasets_name UNIQUE (name)
);
CREATE TABLE "jobs" (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	kind VARCHAR NOT NULL,
	technique VARCHAR,
	params JSON NOT NULL,
	state VARCHAR NOT NULL,
	input_version_id INTEGER,
	output_version_id INTEGER,
	dataset_id INTEGER,
	device VARCHAR,
	progress FLOAT NOT NULL,
	message TEXT NOT NULL,
	error TEXT,
	log_path TEXT,
	created_at DATETIME NOT NULL,
	started_at DATETIME,
	finished_at DATETIME,
	cancel_requested BOOLEAN DEFAULT 0 NOT NULL,
	CONSTRAINT fk_jobs_dataset_id_datasets FOREIGN KEY(dataset_id) REFERENCES datasets (id) ON DELETE RESTRICT,
	CONSTRAINT fk_jobs_output_version_id_model_versions FOREIGN KEY(output_version_id) REFERENCES model_versions (id) ON DELETE RESTRICT,
	CONSTRAINT fk_jobs_input_version_id_model_versions FOREIGN KEY(input_version_id) REFERENCES model_versions (id) ON DELETE RESTRICT
);
INSERT INTO "jobs" VALUES(1,'optimize','quantize.dynamic','{}','succeeded',1,NULL,NULL,'cpu',1.0,'',NULL,NULL,'2025-02-01 09:00:01.000000','2025-02-01 09:00:02.000000','2025-02-01 09:00:05.000000',0);
INSERT INTO "jobs" VALUES(2,'optimize','distill','{"epochs": 50}','running',1,NULL,NULL,'cpu',0.4,'epoch 20',NULL,NULL,'2025-02-01 09:01:00.000000','2025-02-01 09:01:01.000000',NULL,0);
INSERT INTO "jobs" VALUES(3,'measure',NULL,'{}','queued',1,NULL,NULL,'cpu',0.0,'',NULL,NULL,'2025-02-01 09:01:02.000000',NULL,NULL,0);
CREATE TABLE measurements (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	version_id INTEGER NOT NULL,
	dataset_id INTEGER,
	reference_version_id INTEGER,
	job_id INTEGER,
	device VARCHAR NOT NULL,
	runtime VARCHAR NOT NULL,
	provider VARCHAR,
	batch INTEGER NOT NULL,
	threads INTEGER,
	accuracy JSON,
	fidelity JSON,
	latency_p50_ms FLOAT,
	latency_p90_ms FLOAT,
	latency_p99_ms FLOAT,
	latency_mean_ms FLOAT,
	latency_std_ms FLOAT,
	throughput_per_s FLOAT,
	runs INTEGER,
	samples INTEGER,
	size_bytes BIGINT,
	params BIGINT,
	environment JSON NOT NULL,
	created_at DATETIME NOT NULL,
	CONSTRAINT fk_measurements_dataset_id_datasets FOREIGN KEY(dataset_id) REFERENCES datasets (id) ON DELETE RESTRICT,
	CONSTRAINT fk_measurements_job_id_jobs FOREIGN KEY(job_id) REFERENCES jobs (id) ON DELETE SET NULL,
	CONSTRAINT fk_measurements_reference_version_id_model_versions FOREIGN KEY(reference_version_id) REFERENCES model_versions (id) ON DELETE RESTRICT,
	CONSTRAINT fk_measurements_version_id_model_versions FOREIGN KEY(version_id) REFERENCES model_versions (id) ON DELETE RESTRICT
);
CREATE TABLE "model_versions" (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	name VARCHAR NOT NULL,
	parent_id INTEGER,
	format VARCHAR NOT NULL,
	artifact VARCHAR NOT NULL,
	main_file VARCHAR NOT NULL,
	weights_file VARCHAR,
	files JSON NOT NULL,
	size_bytes BIGINT NOT NULL,
	params BIGINT,
	macs BIGINT,
	inputs JSON NOT NULL,
	outputs JSON NOT NULL,
	technique VARCHAR,
	technique_params JSON NOT NULL,
	source_path TEXT,
	source_sha256 VARCHAR,
	trusted BOOLEAN NOT NULL,
	created_at DATETIME NOT NULL,
	notes TEXT NOT NULL,
	details JSON DEFAULT '{}' NOT NULL,
	CONSTRAINT fk_model_versions_parent_id_model_versions FOREIGN KEY(parent_id) REFERENCES model_versions (id) ON DELETE RESTRICT
);
INSERT INTO "model_versions" VALUES(1,'baseline',NULL,'onnx','ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb','model.onnx',NULL,'["model.onnx"]',1000,650,NULL,'[{"name": "x", "shape": ["batch", 64], "dtype": "float32"}]','[{"name": "y", "shape": ["batch", 10], "dtype": "float32"}]','import','{}','/data/digits.onnx',NULL,0,'2025-02-01 09:00:00.500000','','{}');
CREATE TABLE project (
	id INTEGER NOT NULL,
	name VARCHAR NOT NULL,
	created_at DATETIME NOT NULL,
	app_version VARCHAR NOT NULL,
	CONSTRAINT pk_project PRIMARY KEY (id)
);
INSERT INTO "project" VALUES(1,'digits 0003','2025-02-01 09:00:00.000000','0.1.0');
CREATE INDEX ix_measurements_dataset_id ON measurements (dataset_id);
CREATE INDEX ix_measurements_job_id ON measurements (job_id);
CREATE INDEX ix_measurements_reference_version_id ON measurements (reference_version_id);
CREATE INDEX ix_measurements_version_id ON measurements (version_id);
CREATE INDEX ix_model_versions_name ON model_versions (name);
CREATE INDEX ix_model_versions_parent_id ON model_versions (parent_id);
CREATE INDEX ix_model_versions_artifact ON model_versions (artifact);
CREATE INDEX ix_jobs_state ON jobs (state);
CREATE INDEX ix_jobs_input_version_id ON jobs (input_version_id);
CREATE INDEX ix_jobs_output_version_id ON jobs (output_version_id);
CREATE INDEX ix_jobs_dataset_id ON jobs (dataset_id);
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('model_versions',1);
INSERT INTO "sqlite_sequence" VALUES('jobs',3);
COMMIT;
"""


def test_a_database_saved_by_schema_0005_opens_with_no_energy_or_memory(tmp_path: Path) -> None:
    """Measurements from before energy and memory were measured read as not measured (None, never 0)."""
    db_path = tmp_path / "studio.sqlite"
    raw = sqlite3.connect(db_path)
    raw.executescript(SCHEMA_0005)
    raw.close()

    with Store.open(db_path) as store:
        (old,) = store.list_measurements(1)
        assert (old.latency_p50_ms, old.timing["p50_ci95"]) == (0.1, [0.098, 0.102])
        assert (old.energy_per_inference_j, old.peak_memory_bytes, old.execution) == (None, None, {})
        new = store.add_measurement(
            version_id=1,
            device="cuda:0",
            runtime="torch",
            energy_per_inference_j=0.004,
            peak_memory_bytes=3 << 20,
            execution={"energy": {"source": "nvml"}, "mode": "eager"},
        )
        assert new.id == 2 and store.get_measurement(2).execution["energy"] == {"source": "nvml"}
        assert store.get_measurement(2).peak_memory_bytes == 3 << 20
        assert store.project().target_device == "cpu"  # where it was always measured
        assert store.set_target_device("cuda:1").target_device == store.project().target_device == "cuda:1"
        assert store.integrity_check() == "ok"
    assert _revision_in(db_path) == HEAD_REVISION
    engine = make_engine(db_path)
    assert _schema_differences(engine) == []
    engine.dispose()


# A project database written by schema 0005_measurement_timing (sqlite3 .dump) with one measurement.
# Never edit: it stands for files users have.
SCHEMA_0005 = """
BEGIN TRANSACTION;
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL,
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO "alembic_version" VALUES('0005_measurement_timing');
CREATE TABLE datasets (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	name VARCHAR NOT NULL,
	kind VARCHAR NOT NULL,
	spec JSON NOT NULL,
	fingerprint VARCHAR NOT NULL,
	samples INTEGER NOT NULL,
	created_at DATETIME NOT NULL,
	CONSTRAINT uq_datasets_name UNIQUE (name)
);
CREATE TABLE "jobs" (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	kind VARCHAR NOT NULL,
	technique VARCHAR,
	params JSON NOT NULL,
	state VARCHAR NOT NULL,
	input_version_id INTEGER,
	output_version_id INTEGER,
	dataset_id INTEGER,
	device VARCHAR,
	progress FLOAT NOT NULL,
	message TEXT NOT NULL,
	error TEXT,
	log_path TEXT,
	created_at DATETIME NOT NULL,
	started_at DATETIME,
	finished_at DATETIME,
	cancel_requested BOOLEAN DEFAULT 0 NOT NULL, owner_host VARCHAR, owner_pid INTEGER, owner_started VARCHAR, owner_heartbeat DATETIME,
	CONSTRAINT fk_jobs_output_version_id_model_versions FOREIGN KEY(output_version_id) REFERENCES model_versions (id) ON DELETE RESTRICT,
	CONSTRAINT fk_jobs_dataset_id_datasets FOREIGN KEY(dataset_id) REFERENCES datasets (id) ON DELETE RESTRICT,
	CONSTRAINT fk_jobs_input_version_id_model_versions FOREIGN KEY(input_version_id) REFERENCES model_versions (id) ON DELETE RESTRICT
);
CREATE TABLE "measurements" (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	version_id INTEGER NOT NULL,
	dataset_id INTEGER,
	reference_version_id INTEGER,
	job_id INTEGER,
	device VARCHAR NOT NULL,
	runtime VARCHAR NOT NULL,
	provider VARCHAR,
	batch INTEGER NOT NULL,
	threads INTEGER,
	accuracy JSON,
	fidelity JSON,
	latency_p50_ms FLOAT,
	latency_p90_ms FLOAT,
	latency_p99_ms FLOAT,
	latency_mean_ms FLOAT,
	latency_std_ms FLOAT,
	throughput_per_s FLOAT,
	runs INTEGER,
	samples INTEGER,
	size_bytes BIGINT,
	params BIGINT,
	environment JSON NOT NULL,
	created_at DATETIME NOT NULL,
	timing JSON DEFAULT '{}' NOT NULL,
	CONSTRAINT fk_measurements_reference_version_id_model_versions FOREIGN KEY(reference_version_id) REFERENCES model_versions (id) ON DELETE RESTRICT,
	CONSTRAINT fk_measurements_version_id_model_versions FOREIGN KEY(version_id) REFERENCES model_versions (id) ON DELETE RESTRICT,
	CONSTRAINT fk_measurements_dataset_id_datasets FOREIGN KEY(dataset_id) REFERENCES datasets (id) ON DELETE RESTRICT,
	CONSTRAINT fk_measurements_job_id_jobs FOREIGN KEY(job_id) REFERENCES jobs (id) ON DELETE SET NULL
);
INSERT INTO "measurements" VALUES(1,1,NULL,NULL,NULL,'cpu','onnxruntime','CPUExecutionProvider',1,2,NULL,NULL,0.1,0.12,0.2,0.11,0.01,9000.0,100,0,1000,650,'{"onnxruntime": "1.31"}','2025-06-01 08:00:05.000000','{"p50_ci95": [0.098, 0.102], "noise": null}');
CREATE TABLE "model_versions" (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	name VARCHAR NOT NULL,
	parent_id INTEGER,
	format VARCHAR NOT NULL,
	artifact VARCHAR NOT NULL,
	main_file VARCHAR NOT NULL,
	weights_file VARCHAR,
	files JSON NOT NULL,
	size_bytes BIGINT NOT NULL,
	params BIGINT,
	macs BIGINT,
	inputs JSON NOT NULL,
	outputs JSON NOT NULL,
	technique VARCHAR,
	technique_params JSON NOT NULL,
	source_path TEXT,
	source_sha256 VARCHAR,
	trusted BOOLEAN NOT NULL,
	created_at DATETIME NOT NULL,
	notes TEXT NOT NULL,
	details JSON DEFAULT '{}' NOT NULL,
	CONSTRAINT fk_model_versions_parent_id_model_versions FOREIGN KEY(parent_id) REFERENCES model_versions (id) ON DELETE RESTRICT
);
INSERT INTO "model_versions" VALUES(1,'baseline',NULL,'onnx','ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb','model.onnx',NULL,'["model.onnx"]',1000,650,4000,'[{"name": "x", "shape": ["batch", 64], "dtype": "float32"}]','[{"name": "y", "shape": ["batch", 10], "dtype": "float32"}]','import','{}',NULL,NULL,0,'2025-06-01 08:00:01.000000','','{}');
CREATE TABLE project (
	id INTEGER NOT NULL,
	name VARCHAR NOT NULL,
	created_at DATETIME NOT NULL,
	app_version VARCHAR NOT NULL,
	CONSTRAINT pk_project PRIMARY KEY (id)
);
INSERT INTO "project" VALUES(1,'digits 0005','2025-06-01 08:00:00.000000','0.1.0');
CREATE INDEX ix_model_versions_artifact ON model_versions (artifact);
CREATE INDEX ix_model_versions_name ON model_versions (name);
CREATE INDEX ix_model_versions_parent_id ON model_versions (parent_id);
CREATE INDEX ix_jobs_dataset_id ON jobs (dataset_id);
CREATE INDEX ix_jobs_state ON jobs (state);
CREATE INDEX ix_jobs_output_version_id ON jobs (output_version_id);
CREATE INDEX ix_jobs_input_version_id ON jobs (input_version_id);
CREATE INDEX ix_measurements_job_id ON measurements (job_id);
CREATE INDEX ix_measurements_reference_version_id ON measurements (reference_version_id);
CREATE INDEX ix_measurements_dataset_id ON measurements (dataset_id);
CREATE INDEX ix_measurements_version_id ON measurements (version_id);
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('model_versions',1);
INSERT INTO "sqlite_sequence" VALUES('jobs',0);
INSERT INTO "sqlite_sequence" VALUES('measurements',1);
COMMIT;
"""
