"""`--input-spec` through the real command line: a model with a state and a sample rate is refused
with what to give, imported once the rate is given, and described with what each input is fed."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def streaming(corpus_models):
    return corpus_models["state and sample-rate inputs"]


def test_the_rate_is_asked_for_then_given_and_shown(studio_cli, streaming, tmp_path: Path) -> None:
    project = tmp_path / "p"
    refused = studio_cli("import", streaming.model, "--project", project)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "studio: error: the model's input 'sr' is a single number the studio cannot guess; "
        "give its value with --input-spec sr=VALUE"
    ]
    assert not project.exists()  # refused before the project folder was made

    done = studio_cli("import", streaming.model, "--project", project, "--input-spec", "sr=16000", "--json")
    assert done.returncode == 0, done.stderr
    inputs = {spec["name"]: spec.get("role", "batch") for spec in done.json()["inputs"]}
    assert inputs == {"input": "batch", "state": "state", "sr": "16000"}

    info = studio_cli("info", "streaming", "--project", project)
    assert info.returncode == 0, info.stderr
    rows = {
        line.split()[0]: line
        for line in info.stdout.splitlines()
        if line.startswith(("input ", "state ", "sr "))
    }
    assert rows["state"].endswith("= zeros (state)") and rows["sr"].endswith("= 16000")
    assert rows["input"].split()[1] == "batch×64"


def test_a_malformed_spec_is_refused_by_the_parser(studio_cli, streaming, tmp_path: Path) -> None:
    bad = studio_cli("import", streaming.model, "--project", tmp_path / "p", "--input-spec", "sr=fast")
    assert bad.returncode == 2
    assert "the role of input 'sr' must be batch, state or a number, not 'fast'" in bad.stderr
    assert not (tmp_path / "p").exists()
