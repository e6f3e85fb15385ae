"""The demo project, made as a user makes it, can be shared and opened again."""

from __future__ import annotations

from pathlib import Path


def test_the_demo_project_packs_unpacks_and_keeps_no_bytecode(studio_cli, tmp_path: Path) -> None:
    project = tmp_path / "demo"
    made = studio_cli("demo", "--headless", "--project", project)
    assert made.returncode == 0, made.stderr

    assert [p for p in project.rglob("*") if p.name == "__pycache__" or p.suffix == ".pyc"] == []
    packed = studio_cli("pack", project, tmp_path / "demo.studio")
    assert packed.returncode == 0, packed.stderr
    opened = studio_cli("unpack", tmp_path / "demo.studio", tmp_path / "opened")
    assert opened.returncode == 0, opened.stderr
    listed = studio_cli("versions", "--project", tmp_path / "opened", "--json")
    assert [v["name"] for v in listed.json()["versions"]] == ["baseline"]
