"""What a project says is shown, never acted on: escape sequences in its text, paths in its rows."""

from __future__ import annotations

from pathlib import Path

from studio.project import Project

ESCAPES = "\x1b]0;owned\x07\x1b[2J\x1b[1A\x9b31m"


def test_escape_sequences_in_a_project_name_are_printed_escaped(studio_cli, tmp_path: Path) -> None:
    with Project.create(tmp_path / "p", name=f"shared{ESCAPES}project"):
        pass

    result = studio_cli("versions", "--project", tmp_path / "p")

    assert result.returncode == 0, result.stderr
    assert not any(ch in result.stdout for ch in "\x1b\x07\x9b")
    assert "shared\\x1b]0;owned\\x07\\x1b[2J\\x1b[1A\\x9b31mproject" in result.stdout
    as_json = studio_cli("versions", "--project", tmp_path / "p", "--json").json()
    assert as_json["project"]["name"] == f"shared{ESCAPES}project"  # the data itself is kept whole


def test_a_job_log_is_read_from_the_project_never_from_a_stored_path(studio_cli, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("a file outside the project")
    with Project.create(tmp_path / "p") as project:
        job = project.store.add_job(kind="measure", log_path=secret)  # as a stranger's database may say
        (project.logs_dir / f"job-{job.id}.log").write_text("the job's own log\n")

    result = studio_cli("jobs", "log", str(job.id), "--project", tmp_path / "p")

    assert result.returncode == 0, result.stderr
    assert "a file outside the project" not in result.stdout
    assert result.stdout.strip() == "the job's own log"
