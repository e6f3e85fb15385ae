"""Techniques found through real entry points, run as steps in a worker process from the real CLI.

The example plugin (tests/plugins/example) is the worked third-party example from README; the
faulty one breaks on purpose. Both are found exactly as an installed plugin would be: through a
``*.dist-info/entry_points.txt`` on the Python path.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from studio.core.resources import resource

HERE = Path(__file__).parent
DEMO_ONNX = resource("demo", "digits_cnn.onnx")


@pytest.fixture(autouse=True)
def plugin_path(monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [str(HERE / "example"), str(HERE / "faulty"), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))


@pytest.fixture(scope="module")
def base_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("plugins") / "p"
    subprocess.run(
        [sys.executable, "-m", "studio", "import", str(DEMO_ONNX), "--project", str(root), "--name", "base"],
        check=True,
        capture_output=True,
    )
    return root


@pytest.fixture
def project(base_project: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "project"
    shutil.copytree(base_project, dst)
    return dst


def rows(project: Path, table: str) -> list:
    with sqlite3.connect(project / "studio.sqlite") as conn:
        return conn.execute(f"select * from {table}").fetchall()


def artifact_entries(project: Path) -> list[str]:
    return sorted(p.name for p in (project / "artifacts").iterdir())


def test_plugins_lists_third_party_and_broken_ones(studio_cli) -> None:
    result = studio_cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    by_name = {t["name"]: t for t in result.json()["techniques"]}
    example = by_name["example.round_weights"]
    assert example["ok"] and example["title"] == "Round weights"
    assert example["params"]["properties"]["bits"]["maximum"] == 23
    broken = by_name["example.broken"]
    assert not broken["ok"] and "studio_example_broken" in broken["error"]
    text = studio_cli("plugins")
    assert (
        "FAILED TO LOAD" in text.stdout and "Round weights" in text.stdout and "Traceback" not in text.stderr
    )


def test_optimize_makes_a_measured_child_version(studio_cli, project: Path) -> None:
    result = studio_cli(
        "optimize",
        "base",
        "example.round_weights",
        "--project",
        project,
        "--set",
        "bits=6",
        "--data",
        "digits",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    out = result.json()
    assert out["parent_id"] == 1 and out["technique"] == "example.round_weights"
    assert out["params"] == {"bits": 6, "skip": []}
    assert out["name"] == "digits_cnn-round6" or out["name"].endswith("round6")
    assert Path(out["path"]).is_file() and Path(out["path"]).parent.parent == project / "artifacts"
    assert out["details"]["rounded"] > 0
    assert out["notes"] and "less precise" in out["notes"][0]
    assert out["measurements"]["accuracy"]["top1"] > 0.9
    assert out["parent_measurements"]["version"]["id"] == 1
    assert out["ratios"]["size"] == pytest.approx(1.0, rel=0.05)
    assert len(rows(project, "measurements")) == 2
    listed = studio_cli("versions", "--project", project, "--json").json()["versions"]
    assert [v["parent_id"] for v in listed] == [None, 1]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["example.round_weights", "--set", "bits=0"], "bits"),
        (["example.round_weights", "--set", "nope=1"], "there is no parameter 'nope'"),
        (["example.round_weights", "--set", "bits=21"], "20 or fewer"),
        (["example.round_weights", "--set", "bits"], "key=value"),
        (["no.such.technique"], "no technique named"),
        (["example.broken"], "could not be loaded"),
        (["faulty.torch_only"], "takes PyTorch models; this one is ONNX"),
        (["example.round_weights", "--data", "missing.npz"], "missing.npz"),
        (["faulty.crash_midway"], "broke half way"),
        (["faulty.crash_midway", "--set", "how=kill"], "SIGKILL"),
    ],
)
def test_a_refused_or_failed_step_leaves_the_project_unchanged(
    studio_cli, project: Path, args: list[str], fragment: str
) -> None:
    versions, artifacts = rows(project, "model_versions"), artifact_entries(project)
    result = studio_cli("optimize", "base", *args, "--project", project)
    assert result.returncode == 2, (result.stdout, result.stderr)
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("studio: error: ") and fragment in last, result.stderr
    assert rows(project, "model_versions") == versions
    assert artifact_entries(project) == artifacts  # no half-written version, no staging leftovers


def test_a_recipe_chains_steps(studio_cli, project: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "model: base\ndata: digits\nsteps:\n"
        "  - technique: example.round_weights\n    params: {bits: 12}\n    name: r12\n"
        "  - technique: example.round_weights\n    params: {bits: 8}\n"
    )
    result = studio_cli("run", recipe, "--project", project, "--json")
    assert result.returncode == 0, result.stderr
    steps = result.json()["steps"]
    assert [s["name"] for s in steps][0] == "r12"
    assert steps[1]["parent_id"] == steps[0]["id"] and steps[0]["parent_id"] == 1


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("steps: [unclosed\n", "line 2: not valid YAML"),
        ("model: base\nsteps: []\n", "line 2: 'steps' must be a non-empty list"),
        ("model: base\nstep: []\n", "line 2: unknown key 'step'"),
        ("model: base\nsteps:\n  - technique: nope\n", "line 3: step 1: there is no technique named 'nope'"),
        (
            "model: base\nsteps:\n  - technique: example.round_weights\n    params:\n      bits: 99\n",
            "line 5: step 1 (example.round_weights): bits",
        ),
        (
            "model: base\nsteps:\n  - technique: example.round_weights\n  - technique: faulty.torch_only\n",
            "line 4: faulty.torch_only cannot take an ONNX model",
        ),
        ("steps:\n  - technique: example.round_weights\n", "names no model"),
    ],
)
def test_an_invalid_recipe_is_refused_with_its_line(
    studio_cli, project: Path, tmp_path: Path, text: str, fragment: str
) -> None:
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(text)
    versions = rows(project, "model_versions")
    result = studio_cli("run", recipe, "--project", project)
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr, result.stderr
    assert rows(project, "model_versions") == versions


def test_cancel_stops_a_running_step_quickly_and_keeps_nothing(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from studio.background import JobCancelled
    from studio.project import Project

    monkeypatch.syspath_prepend(str(HERE / "faulty"))
    seen: list[float] = []
    asked: list[float] = []

    def progress(fraction: float, message: str) -> None:
        seen.append(fraction)

    def should_cancel() -> bool:
        if seen and not asked:
            asked.append(time.monotonic())
        return bool(asked)

    with Project.open(project) as p:
        before = p.store.list_versions()
        with pytest.raises(JobCancelled):
            p.optimize(
                p.store.find_version("base"),
                "faulty.crash_midway",
                {"how": "hang"},
                on_progress=progress,
                should_cancel=should_cancel,
            )
        assert time.monotonic() - asked[0] < 2.0
        assert p.store.list_versions() == before
    assert artifact_entries(project) == [e for e in artifact_entries(project) if not e.startswith(".staging")]
