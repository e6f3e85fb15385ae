"""Project folders on disk: creating, reopening, and content-addressed artifact folders."""

from __future__ import annotations

import errno
import hashlib
import os
import time
from pathlib import Path

import pytest

from studio import __version__
from studio.api import StudioError
from studio.project import STALE_STAGING_SECONDS, Project
from studio.store import Store


@pytest.fixture
def project(tmp_path: Path):
    with Project.create(tmp_path / "digits") as project:
        yield project


@pytest.fixture
def model_files(tmp_path: Path) -> list[tuple[Path, str]]:
    """An ONNX file with its external data, as torch.onnx.export writes them."""
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"onnx graph " * 100)
    (folder / "model.onnx.data").write_bytes(os.urandom(50_000))
    return [(folder / "model.onnx", "model.onnx"), (folder / "model.onnx.data", "model.onnx.data")]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hidden_entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_create_makes_the_folder_layout(tmp_path: Path) -> None:
    with Project.create(tmp_path / "new" / "digits") as project:
        assert project.root == (tmp_path / "new" / "digits").resolve()
        assert (project.root / "studio.sqlite").is_file()
        assert project.artifacts_dir.is_dir() and project.logs_dir.is_dir()
        record = project.store.project()
        assert (record.name, record.app_version) == ("digits", __version__)
    with Project.create(tmp_path / "named", name="Digits study") as project:
        assert project.store.project().name == "Digits study"


def test_create_on_an_existing_project_opens_it(project: Project) -> None:
    project.store.set_project("kept", __version__)
    root = project.root
    project.close()
    with Project.create(root, name="ignored") as again:
        assert again.store.project().name == "kept"
    with Project.open_or_create(root) as again:
        assert again.store.project().name == "kept"


def test_a_project_reopens_with_its_versions(project: Project, model_files: list[tuple[Path, str]]) -> None:
    sha = project.store_artifact(model_files)
    version = project.store.add_version(
        name="baseline",
        format="onnx",
        artifact=sha,
        main_file="model.onnx",
        files=["model.onnx", "model.onnx.data"],
        size_bytes=51_100,
    )
    project.close()
    with Project.open(project.root) as reopened:
        stored = reopened.store.get_version(version.id)
        assert stored == version
        assert reopened.version_files_dir(stored) == reopened.artifacts_dir / sha
        assert reopened.version_path(stored).read_bytes() == model_files[0][0].read_bytes()


def test_open_refuses_a_folder_that_is_not_a_project(tmp_path: Path) -> None:
    plain = tmp_path / "photos"
    plain.mkdir()
    for path in (plain, tmp_path / "missing", tmp_path / "missing" / "studio.sqlite"):
        with pytest.raises(StudioError, match=r"is not a studio project \(no studio.sqlite\)$"):
            Project.open(path)
    assert not (tmp_path / "missing").exists()


def test_create_refuses_a_folder_with_other_files(tmp_path: Path) -> None:
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    for make in (Project.create, Project.open_or_create):
        with pytest.raises(StudioError, match="is not empty and is not a studio project"):
            make(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(StudioError, match="is a file, not a folder"):
        Project.create(afile)


@pytest.mark.parametrize("stage", ["empty database file", "schema without project row"])
def test_a_creation_cut_short_is_finished_when_opened(tmp_path: Path, stage: str) -> None:
    """A crash between making the database and naming the project leaves a project that opens."""
    root = tmp_path / "halfway"
    root.mkdir()
    if stage == "empty database file":
        (root / "studio.sqlite").touch()
    else:
        Store.open(root / "studio.sqlite", create=True).close()
    with Project.open(root) as project:
        assert project.store.project().name == "halfway"
        assert project.artifacts_dir.is_dir() and project.logs_dir.is_dir()
    with Project.create(root, name="ignored") as project:
        assert project.store.project().name == "halfway"


def test_artifact_hash_covers_names_and_contents(
    project: Project, model_files: list[tuple[Path, str]]
) -> None:
    sha = project.store_artifact(model_files)
    lines = "".join(
        f"{name}\t{_sha(src.read_bytes())}\n" for src, name in sorted(model_files, key=lambda e: e[1])
    )
    assert sha == _sha(lines.encode())
    folder = project.artifact_dir(sha)
    assert sorted(p.name for p in folder.iterdir()) == ["model.onnx", "model.onnx.data"]
    for src, name in model_files:
        assert (folder / name).read_bytes() == src.read_bytes()
    assert project.verify_artifact(sha)
    renamed = project.store_artifact([(model_files[0][0], "net.onnx"), model_files[1]])
    assert renamed != sha


def test_identical_files_are_stored_once(
    project: Project, model_files: list[tuple[Path, str]], tmp_path: Path
) -> None:
    first = project.store_artifact(model_files)
    copy = tmp_path / "copy"
    copy.mkdir()
    copies = []
    for src, name in reversed(model_files):
        (copy / src.name).write_bytes(src.read_bytes())
        copies.append((copy / src.name, name))
    assert project.store_artifact(copies) == first
    assert [p.name for p in project.artifacts_dir.iterdir()] == [first]


def test_files_in_subfolders_keep_their_place(project: Project, tmp_path: Path) -> None:
    arch = tmp_path / "net.py"
    arch.write_text("def build_model():\n    pass\n")
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"\x00" * 64)
    sha = project.store_artifact([(arch, "net.py"), (weights, "weights/w.safetensors")])
    assert (project.artifact_dir(sha) / "weights" / "w.safetensors").read_bytes() == b"\x00" * 64
    assert project.verify_artifact(sha)


def test_verify_notices_a_changed_or_extra_file(
    project: Project, model_files: list[tuple[Path, str]]
) -> None:
    sha = project.store_artifact(model_files)
    folder = project.artifact_dir(sha)
    (folder / "stray.txt").write_text("added later")
    assert not project.verify_artifact(sha)
    (folder / "stray.txt").unlink()
    (folder / "model.onnx").write_bytes(b"tampered")
    assert not project.verify_artifact(sha)
    assert project.store_artifact(model_files) == sha  # storing the files again repairs the folder
    assert project.verify_artifact(sha)
    assert not project.verify_artifact(_sha(b"never stored"))
    assert _hidden_entries(project.artifacts_dir) == []


def test_a_failed_copy_leaves_no_folder_behind(
    project: Project, model_files: list[tuple[Path, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The data file disappears while the first file is being copied (a drive unplugged)."""
    real_fsync = os.fsync

    def unplug(fd: int) -> None:
        model_files[1][0].unlink(missing_ok=True)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", unplug)
    with pytest.raises(StudioError, match=r"^cannot copy .*model.onnx.data into the project: "):
        project.store_artifact(model_files)
    assert list(project.artifacts_dir.iterdir()) == []


def test_a_full_disk_leaves_no_folder_behind(
    project: Project, model_files: list[tuple[Path, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def disk_full(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(StudioError, match="No space left on device"):
        project.store_artifact(model_files)
    assert list(project.artifacts_dir.iterdir()) == []


def test_missing_sources_are_refused_before_anything_is_written(project: Project, tmp_path: Path) -> None:
    with pytest.raises(StudioError, match="does not exist or is not a file"):
        project.store_artifact([(tmp_path / "gone.onnx", "model.onnx")])
    with pytest.raises(StudioError, match="does not exist or is not a file"):
        project.store_artifact([(tmp_path, "model.onnx")])
    with pytest.raises(StudioError, match="at least one file"):
        project.store_artifact([])
    assert list(project.artifacts_dir.iterdir()) == []


@pytest.mark.parametrize(
    "name",
    [
        "",
        "/etc/passwd",
        "../escape.onnx",
        "a/../../b",
        "./model.onnx",
        "a//b",
        "dir/",
        "C:model.onnx",
        "a\\b",
        "x\0",
    ],
)
def test_names_must_stay_inside_the_folder(
    project: Project, model_files: list[tuple[Path, str]], name: str
) -> None:
    with pytest.raises(StudioError, match="is not a plain relative file name"):
        project.store_artifact([(model_files[0][0], name)])
    assert list(project.artifacts_dir.iterdir()) == []


@pytest.mark.parametrize(
    "names", [("model.onnx", "model.onnx"), ("Model.onnx", "model.onnx"), ("w", "w/x.bin")]
)
def test_names_that_clash_are_refused(
    project: Project, model_files: list[tuple[Path, str]], names: tuple[str, str]
) -> None:
    with pytest.raises(StudioError, match="clashes with another one"):
        project.store_artifact([(model_files[0][0], names[0]), (model_files[1][0], names[1])])
    assert list(project.artifacts_dir.iterdir()) == []


def test_artifact_ids_are_checked(project: Project) -> None:
    for bad in ("../studio.sqlite", "abc", "A" * 64):
        with pytest.raises(StudioError, match="is not an artifact id"):
            project.artifact_dir(bad)


def test_stale_staging_folders_are_removed_at_open(project: Project) -> None:
    old = project.artifacts_dir / ".staging-crashed"
    (old / "weights").mkdir(parents=True)
    (old / "weights" / "half.bin").write_bytes(b"\x00" * 10)
    long_ago = time.time() - STALE_STAGING_SECONDS - 60
    for path in (old / "weights" / "half.bin", old / "weights", old):
        os.utime(path, (long_ago, long_ago))
    live = project.artifacts_dir / ".staging-copying-now"  # another studio, mid-copy
    live.mkdir()
    (live / "model.onnx").write_bytes(b"partial")
    project.close()

    with Project.open(project.root) as reopened:
        assert _hidden_entries(reopened.artifacts_dir) == [".staging-copying-now"]
