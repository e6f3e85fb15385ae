"""`studio versions [list|rename|delete]` as a user runs it: one line out, refusals in one
sentence with exit code 2, and nothing deleted without --yes."""

from __future__ import annotations

from pathlib import Path

import pytest
from lineage_models import add_job, make_lineage, measure, model_files

from studio.project import Project
from studio.tables import human_bytes


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return model_files(tmp_path_factory.mktemp("models"))


@pytest.fixture
def project_dir(tmp_path: Path, files: dict[str, Path]) -> Path:
    """baseline (v1) → pruned (v2) → int8 (v3), and other (v4); int8 measured twice."""
    root = tmp_path / "p"
    with Project.create(root) as project:
        lineage = make_lineage(project, files)
        measure(project, lineage.int8)
        measure(project, lineage.int8, reference=lineage.pruned)
    return root


def _names(studio_cli, project_dir: Path) -> list[tuple[int, str]]:
    listed = studio_cli("versions", "--project", project_dir, "--json")
    assert listed.returncode == 0, listed.stderr
    return [(v["id"], v["name"]) for v in listed.json()["versions"]]


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_versions_without_an_action_lists_the_lineage_as_before(studio_cli, project_dir: Path) -> None:
    plain = studio_cli("versions", "--project", project_dir)
    listed = studio_cli("versions", "list", "--project", project_dir)
    assert plain.returncode == listed.returncode == 0, plain.stderr
    assert plain.stdout == listed.stdout
    assert all(name in plain.stdout for name in ("baseline", "pruned", "int8", "other"))


def test_rename(studio_cli, project_dir: Path) -> None:
    result = studio_cli("versions", "rename", "pruned", "int8-small", "--project", project_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "renamed v2 to 'int8-small'\n"
    assert _names(studio_cli, project_dir)[1] == (2, "int8-small")
    as_json = studio_cli("versions", "rename", "v2", "pruned", "--project", project_dir, "--json").json()
    assert (as_json["id"], as_json["name"], as_json["previous_name"]) == (2, "pruned", "int8-small")


def test_delete_without_yes_says_what_would_go_and_deletes_nothing(studio_cli, project_dir: Path) -> None:
    folder = next((project_dir / "artifacts").iterdir())
    folders = sorted(p.name for p in (project_dir / "artifacts").iterdir())
    with Project.open(project_dir) as project:
        size = _folder_bytes(project.version_files_dir(project.store.get_version(3)))
    result = studio_cli("versions", "delete", "v3", "--project", project_dir)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        f"studio: error: this would delete v3 'int8' with 2 measurements ({human_bytes(size)} to free); "
        "add --yes to delete it\n"
    )
    assert len(_names(studio_cli, project_dir)) == 4
    assert folder.is_dir() and sorted(p.name for p in (project_dir / "artifacts").iterdir()) == folders


def test_delete_with_yes(studio_cli, project_dir: Path) -> None:
    with Project.open(project_dir) as project:
        folder = project.version_files_dir(project.store.get_version(3))
    size = _folder_bytes(folder)
    result = studio_cli("versions", "delete", "int8", "--yes", "--project", project_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"deleted v3 'int8' (2 measurements, {human_bytes(size)} freed)\n"
    assert not folder.exists()
    assert _names(studio_cli, project_dir) == [(1, "baseline"), (2, "pruned"), (4, "other")]


def test_delete_json(studio_cli, project_dir: Path) -> None:
    result = studio_cli("versions", "delete", "v4", "--yes", "--json", "--project", project_dir)
    assert result.returncode == 0, result.stderr
    d = result.json()
    assert (d["id"], d["name"], d["measurements_removed"], d["jobs_detached"]) == (4, "other", 0, 0)
    assert d["artifact_removed"] is True and d["bytes_freed"] > 0


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (("delete", "v2", "--yes"), "v2 has versions made from it (v3): delete those first"),
        (("delete", "v3", "v4", "--yes"), "'v4' is one word too many for delete"),
        (("rename", "v2"), "give the new name: studio versions rename VERSION NAME"),
        (("delete",), "name the version to delete"),
        (("rename", "v2", " "), "the new name for v2 is empty"),
        (("delete", "v9", "--yes"), "there is no version 9 in this project"),
    ],
)
def test_a_refusal_is_one_sentence_and_changes_nothing(
    studio_cli, project_dir: Path, args: tuple[str, ...], sentence: str
) -> None:
    before = _names(studio_cli, project_dir)
    result = studio_cli("versions", *args, "--project", project_dir)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"studio: error: {sentence}") and result.stderr.count("\n") == 1
    assert _names(studio_cli, project_dir) == before


def test_a_version_a_queued_job_uses_is_refused(studio_cli, project_dir: Path) -> None:
    with Project.open(project_dir) as project:
        job = add_job(project, input_version_id=3)
    result = studio_cli("versions", "delete", "v3", "--yes", "--project", project_dir)
    assert result.returncode == 2
    assert (
        result.stderr == f"studio: error: v3 is in use by job {job} (queued): let it end or cancel it first\n"
    )
    assert len(_names(studio_cli, project_dir)) == 4
