"""Every step's result passes the gate before it is a version, through the real command line: a
changed interface is never recorded, a collapsed one is recorded with a last `warning:` line and
exit code 3, or refused below `--min-fidelity`."""

from __future__ import annotations

from pathlib import Path

import pytest
from faulty_plugin import studio_with_faulty

from studio.core.resources import resource


@pytest.fixture
def project(studio_cli, tmp_path: Path) -> Path:
    root = tmp_path / "p"
    assert studio_cli("import", resource("demo", "digits_cnn.onnx"), "--project", root).returncode == 0
    return root


def _versions(studio_cli, project: Path) -> list[dict]:
    return studio_cli("versions", "--project", project, "--json").json()["versions"]


def test_a_faithful_result_passes_and_its_figures_are_kept(studio_cli, project: Path) -> None:
    done = studio_cli(
        "optimize", "v1", "quantize.dynamic", "--data", "digits", "--project", project, "--json"
    )
    assert done.returncode == 0, done.stderr
    gate = done.json()["gate"]
    assert not gate["collapsed"] and gate["rule"] == "top-1 agreement" and gate["figure"] >= 0.9
    assert gate["source"] == "validation split of digits" and gate["samples"] == 64


def test_a_collapsed_result_is_kept_with_a_warning_and_exit_code_3(studio_cli, project: Path) -> None:
    done = studio_with_faulty(
        "optimize", "v1", "faulty.break_output", "--data", "digits", "--no-measure", "--project", project
    )
    assert done.returncode == 3, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("warning: v2 (") and "follows its parent poorly: top-1 agreement" in last
    kept = _versions(studio_cli, project)[-1]
    assert kept["id"] == 2 and kept["details"]["gate"]["collapsed"] is True
    listed = studio_cli("versions", "--project", project).stdout
    assert (
        "└ ⚠ digits_cnn+faulty.break_output" in listed
    )  # marked where versions are listed, as in the window


def test_below_a_floor_the_user_set_nothing_is_recorded(studio_cli, project: Path) -> None:
    before = _versions(studio_cli, project)
    done = studio_with_faulty(
        "optimize",
        "v1",
        "faulty.break_output",
        "--data",
        "digits",
        "--min-fidelity",
        "0.9",
        "--project",
        project,
    )
    assert done.returncode == 2
    (sentence,) = done.stderr.strip().splitlines()[-1:]
    assert "the result was refused" in sentence and "below the floor of 0.9 you set" in sentence
    assert _versions(studio_cli, project) == before


def test_a_result_with_another_interface_is_never_recorded(studio_cli, project: Path) -> None:
    before = _versions(studio_cli, project)
    done = studio_with_faulty(
        "optimize", "v1", "faulty.break_output", "--set", "how=cut", "--project", project
    )
    assert done.returncode == 2
    assert (
        "the step changed the model's interface: output 'logits' has shape [batch, 1] where its parent's has [batch, 10]"
        in done.stderr
    )
    assert _versions(studio_cli, project) == before
    assert not [p for p in (project / "artifacts").iterdir() if p.name.startswith(".staging-")]
