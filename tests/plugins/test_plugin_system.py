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

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

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
    assert out["name"] == "digits_cnn-round6"
    saved = Path(out["path"])
    assert saved.is_file() and saved.parent.parent == project / "artifacts"
    # every float32 weight of the demo model, cut to 6 mantissa bits in the saved version
    original, rounded = _float_weights(DEMO_ONNX), _float_weights(saved)
    assert out["details"]["rounded"] == len(original) > 0 and rounded.keys() == original.keys()
    for name, array in original.items():
        np.testing.assert_array_equal(rounded[name], _keep_bits(array, 6))
    assert any(not np.array_equal(rounded[name], original[name]) for name in original)
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
    assert steps[0]["name"] == "r12"
    assert steps[1]["parent_id"] == steps[0]["id"] and steps[0]["parent_id"] == 1
    assert [s["details"]["bits"] for s in steps] == [12, 8]
    # each step wrote its own file, rounded from its parent's: 12 bits, then 8
    original = _float_weights(DEMO_ONNX)
    for step, bits in zip(steps, (12, 8), strict=True):
        saved = _float_weights(Path(step["path"]))
        assert saved.keys() == original.keys()
        for name, array in original.items():
            np.testing.assert_array_equal(saved[name], _keep_bits(array, bits))


def _float_weights(path: Path) -> dict[str, np.ndarray]:
    arrays = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
    return {name: array for name, array in arrays.items() if array.dtype == np.float32}


def _keep_bits(array: np.ndarray, bits: int) -> np.ndarray:
    mask = np.uint32(0xFFFFFFFF) << np.uint32(23 - bits)
    return (array.view(np.uint32) & mask).view(np.float32)


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


def test_cancel_stops_a_running_step_at_its_next_progress_report_and_keeps_nothing(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cancel reaches the technique through its own progress report (the marker shows it); the
    pool's forced stop after a grace period is not what ended it."""
    from studio.engine import Engine, JobCancelled
    from studio.project import Project

    monkeypatch.syspath_prepend(str(HERE / "faulty"))
    marker = tmp_path / "cancel-seen.txt"
    seen: list[float] = []

    with Project.open(project) as p:
        before = p.store.list_versions()
        artifacts = artifact_entries(project)
        with pytest.raises(JobCancelled), Engine.for_project(p) as engine:
            engine.run_step(
                p.store.find_version("base"),
                "faulty.crash_midway",
                {"how": "hang", "cancel_marker": str(marker)},
                on_progress=lambda fraction, message: seen.append(fraction),
                should_cancel=lambda: bool(seen),
            )
        assert marker.read_text() == "cancelled at a progress report"
        assert p.store.list_versions() == before
        jobs = p.store.list_jobs()
        assert jobs[-1].state == "cancelled"
    assert artifact_entries(project) == artifacts  # no staging folder or half-written model left
