"""A damaged or emptied project database is refused in one sentence, and never written to."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hostile_files import damage_the_middle

from studio.api import StudioError
from studio.core.resources import resource
from studio.project import Project

DEMO = resource("demo", "digits_cnn.onnx")


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    root = tmp_path / "p"
    with Project.create(root) as project:
        project.import_model(DEMO, name="baseline")
        project.import_model(DEMO, name="again")
    return root


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_garbage_in_the_middle_is_refused_before_anything_is_written(project_dir: Path) -> None:
    database = project_dir / "studio.sqlite"
    damage_the_middle(database)
    before = _digest(database)

    with pytest.raises(
        StudioError, match=r"^the project database is damaged: .*; nothing was written to it\. Restore it"
    ):
        Project.open(project_dir)
    assert _digest(database) == before


def test_importing_into_a_damaged_project_exits_2_and_changes_nothing(studio_cli, project_dir: Path) -> None:
    database = project_dir / "studio.sqlite"
    damage_the_middle(database)
    before = _digest(database)
    folders = sorted((project_dir / "artifacts").iterdir())

    result = studio_cli("import", DEMO, "--project", project_dir, "--name", "third")

    assert result.returncode == 2
    (sentence,) = result.stderr.strip().splitlines()
    assert sentence.startswith("studio: error: the project database is damaged: ")
    assert _digest(database) == before
    assert sorted((project_dir / "artifacts").iterdir()) == folders


def test_an_emptied_database_beside_model_files_is_not_started_afresh(project_dir: Path) -> None:
    database = project_dir / "studio.sqlite"
    database.write_bytes(b"")

    with pytest.raises(StudioError, match="is empty but the project holds model files"):
        Project.open(project_dir)
    assert database.stat().st_size == 0


def test_a_creation_cut_short_is_still_finished(tmp_path: Path) -> None:
    root = tmp_path / "new"
    root.mkdir()
    (root / "studio.sqlite").write_bytes(b"")  # made, then the studio stopped before the schema
    with Project.open(root) as project:
        assert project.store.list_versions() == []
