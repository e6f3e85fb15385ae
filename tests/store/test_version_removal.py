"""Renaming and deleting versions of a real project: what a delete takes along, what it refuses,
and that the project opens, lists and shares cleanly afterwards."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from lineage_models import Lineage, add_job, dead_pid, make_lineage, measure, model_files

from studio.api import StudioError
from studio.project import DELETING_PREFIX, GRAPH_CACHE_DIR, Project
from studio.versions import check_model_file


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return model_files(tmp_path_factory.mktemp("models"))


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    with Project.create(tmp_path / "p") as project:
        yield project


@pytest.fixture
def lineage(project: Project, files: dict[str, Path]) -> Lineage:
    return make_lineage(project, files)


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _hidden(project: Project) -> list[str]:
    return sorted(p.name for p in project.artifacts_dir.iterdir() if p.name.startswith("."))


# -- rename ----------------------------------------------------------------------------------------


def test_rename_changes_only_the_name_and_lasts(project: Project, lineage: Lineage) -> None:
    renamed = project.rename_version(lineage.pruned.id, "  int8-small ")
    assert (renamed.id, renamed.name, renamed.artifact) == (
        lineage.pruned.id,
        "int8-small",
        lineage.pruned.artifact,
    )
    assert renamed.parent_id == lineage.baseline.id
    root = project.root
    project.close()
    with Project.open(root) as again:
        assert again.store.find_version("int8-small").id == lineage.pruned.id
        assert again.store.children(lineage.pruned.id)[0].id == lineage.int8.id


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("", "the new name for v2 is empty"),
        ("   ", "is empty"),
        ("v7", "reads as a version id"),
        ("a\nb", "one line"),
    ],
)
def test_a_name_that_cannot_name_the_version_is_refused(
    project: Project, lineage: Lineage, name: str, says: str
) -> None:
    with pytest.raises(StudioError, match=says):
        project.rename_version(lineage.pruned.id, name)
    assert project.store.get_version(lineage.pruned.id).name == "pruned"


# -- delete ----------------------------------------------------------------------------------------


def test_deleting_a_leaf_removes_its_row_measurements_and_files(project: Project, lineage: Lineage) -> None:
    leaf = lineage.int8
    measure(project, leaf)
    measure(project, leaf, reference=lineage.pruned)  # its own comparison with its parent goes with it
    kept = measure(project, lineage.pruned)
    folder = project.version_files_dir(leaf)
    size = _folder_bytes(folder)

    preview = project.preview_delete_version(leaf.id)
    assert folder.is_dir() and len(project.store.list_measurements(leaf.id)) == 2  # a preview changes nothing

    deleted = project.delete_version(leaf.id)
    assert deleted == preview
    assert (deleted.id, deleted.name, deleted.measurements_removed) == (leaf.id, "int8", 2)
    assert deleted.artifact_removed and deleted.bytes_freed == size > 0
    assert not folder.exists() and _hidden(project) == []
    assert [m.id for m in project.store.list_measurements()] == [kept]
    with pytest.raises(StudioError, match=f"no version {leaf.id}"):
        project.store.get_version(leaf.id)
    assert [v.name for v in project.store.list_versions()] == ["baseline", "pruned", "other"]
    assert deleted.to_dict() == {
        "id": leaf.id,
        "name": "int8",
        "measurements_removed": 2,
        "jobs_detached": 0,
        "artifact_removed": True,
        "bytes_freed": size,
        "shared_with": [],
    }


def test_a_version_with_versions_made_from_it_is_refused(project: Project, lineage: Lineage) -> None:
    measure(project, lineage.pruned)
    with pytest.raises(StudioError) as refused:
        project.delete_version(lineage.pruned.id)
    assert str(refused.value) == "v2 has versions made from it (v3): delete those first"
    assert len(project.store.list_versions()) == 4
    assert len(project.store.list_measurements(lineage.pruned.id)) == 1
    assert project.verify_artifact(lineage.pruned.artifact)


def test_the_store_checks_again_inside_its_transaction(project: Project, lineage: Lineage) -> None:
    """The store's delete refuses on its own and rolls back the measurements it removed first."""
    measure(project, lineage.pruned)
    with pytest.raises(StudioError, match="made from it"):
        project.store.delete_version(lineage.pruned.id)
    assert len(project.store.list_measurements(lineage.pruned.id)) == 1


def test_a_version_another_version_was_compared_against_is_refused(
    project: Project, lineage: Lineage
) -> None:
    measure(project, lineage.other)
    measure(project, lineage.int8, reference=lineage.other)
    with pytest.raises(StudioError) as refused:
        project.delete_version(lineage.other.id)
    assert str(refused.value) == "measurements of v3 were compared against v4: delete those versions first"
    assert len(project.store.list_measurements()) == 2
    assert project.verify_artifact(lineage.other.artifact)


@pytest.mark.parametrize("state", ["queued", "running"])
def test_a_version_an_unfinished_job_uses_is_refused(project: Project, lineage: Lineage, state: str) -> None:
    job = add_job(project, state=state, input_version_id=lineage.int8.id)
    with pytest.raises(StudioError) as refused:
        project.delete_version(lineage.int8.id)
    assert str(refused.value) == f"v3 is in use by job {job} ({state}): let it end or cancel it first"
    assert project.verify_artifact(lineage.int8.artifact)
    project.store.update_job(job, state="cancelled")
    assert project.delete_version(lineage.int8.id).jobs_detached == 1


def test_a_version_a_queued_step_names_as_its_student_is_refused(project: Project, lineage: Lineage) -> None:
    job = add_job(
        project, input_version_id=lineage.other.id, params={"student": "named", "student_ref": "v3"}
    )
    with pytest.raises(StudioError, match=f"^v3 is in use by job {job} \\(queued\\)"):
        project.delete_version(lineage.int8.id)
    assert project.verify_artifact(lineage.int8.artifact)


def test_finished_jobs_stay_as_history_without_the_version(project: Project, lineage: Lineage) -> None:
    made_it = add_job(
        project, state="succeeded", input_version_id=lineage.pruned.id, output_version_id=lineage.int8.id
    )
    read_it = add_job(project, state="failed", input_version_id=lineage.int8.id)
    deleted = project.delete_version(lineage.int8.id)
    assert deleted.jobs_detached == 2
    jobs = {job.id: job for job in project.store.list_jobs()}
    assert (jobs[made_it].state, jobs[made_it].input_version_id, jobs[made_it].output_version_id) == (
        "succeeded",
        lineage.pruned.id,
        None,
    )
    assert (jobs[read_it].state, jobs[read_it].input_version_id) == ("failed", None)


def test_files_another_version_uses_are_kept(
    project: Project, lineage: Lineage, files: dict[str, Path]
) -> None:
    """A step whose output is byte for byte its input shares the input's folder."""
    same = project.add_checked_model(
        check_model_file(files["other"]), name="same files", parent=lineage.other, technique="export"
    )
    assert same.artifact == lineage.other.artifact
    deleted = project.delete_version(same.id)
    assert (deleted.artifact_removed, deleted.bytes_freed, deleted.shared_with) == (
        False,
        0,
        (lineage.other.id,),
    )
    assert project.verify_artifact(lineage.other.artifact)
    assert project.delete_version(lineage.other.id).artifact_removed  # the last user takes them along
    assert not project.artifact_dir(lineage.other.artifact).exists()


def test_the_graph_views_onnx_conversion_goes_with_the_files(project: Project, lineage: Lineage) -> None:
    cache = project.root / GRAPH_CACHE_DIR
    cache.mkdir()
    converted = cache / f"{lineage.int8.artifact}.onnx"
    shutil.copy(project.version_path(lineage.int8), converted)
    unrelated = cache / f"{lineage.pruned.artifact}.onnx"
    unrelated.write_bytes(b"kept")
    size = _folder_bytes(project.version_files_dir(lineage.int8)) + converted.stat().st_size
    assert project.delete_version(lineage.int8.id).bytes_freed == size
    assert not converted.exists() and unrelated.exists()


def test_ids_are_never_reused_and_the_project_reopens(
    project: Project, lineage: Lineage, files: dict[str, Path]
) -> None:
    newest = max(v.id for v in project.store.list_versions())
    project.delete_version(newest)
    root = project.root
    project.close()
    with Project.open(root) as again:
        listed = [(v["id"], v["name"]) for v in again.summary()["versions"]]
        assert listed == [(1, "baseline"), (2, "pruned"), (3, "int8")]
        again_other = again.import_model(files["other"], name="other again")
        assert again_other.id == newest + 1
        assert again.verify_artifact(again_other.artifact)


def test_a_delete_cut_short_leaves_only_a_leftover_the_next_open_removes(
    project: Project, lineage: Lineage
) -> None:
    """As if the studio died between moving a deleted version's folder aside and removing it."""
    project.delete_version(lineage.int8.id)
    aside = project.artifacts_dir / f"{DELETING_PREFIX}{dead_pid()}-x7q"
    aside.mkdir()
    shutil.copytree(project.version_files_dir(lineage.pruned), aside / ("0" * 64))
    live = project.artifacts_dir / f"{DELETING_PREFIX}{os.getpid()}-live"  # a delete still running
    live.mkdir()
    root = project.root
    project.close()
    with Project.open(root) as again:
        assert _hidden(again) == [live.name]
        assert [v.id for v in again.store.list_versions()] == [1, 2, 4]


def test_a_project_with_deleted_versions_packs_and_unpacks(
    project: Project, lineage: Lineage, tmp_path: Path
) -> None:
    from studio.bundle import pack_project, unpack_bundle

    measure(project, lineage.int8)
    project.delete_version(lineage.int8.id)
    project.delete_version(lineage.pruned.id)
    root = project.root
    project.close()
    packed = pack_project(root, tmp_path / "p.studio")
    assert (packed.versions, packed.artifacts) == (2, 2)
    unpack_bundle(tmp_path / "p.studio", tmp_path / "unpacked")
    with Project.open(tmp_path / "unpacked") as unpacked:
        versions = unpacked.store.list_versions()
        assert [(v.id, v.name) for v in versions] == [(1, "baseline"), (4, "other")]
        assert all(unpacked.verify_artifact(v.artifact) for v in versions)
