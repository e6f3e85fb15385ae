"""One recipe run three ways — the command line, the Python API and the window — goes through the
same engine, so it gives the same versions, the same measurements and the same jobs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from uitools import UI_MARKS, WAIT_MS, open_project, wait_for_plugins

from studio.core.recipes import load_recipe
from studio.engine import Engine
from studio.jobs.logs import job_log_path
from studio.project import Project

pytestmark = [*UI_MARKS, pytest.mark.slow, pytest.mark.timeout(1200)]
CHAIN_MS = 600_000  # two steps and their measurements, on a busy 2-core machine

RECIPE = """\
data: digits
steps:
  - technique: prune.structured
    params: {ratio: 0.25, finetune_epochs: 0}
  - technique: quantize.static
    params: {calibration_samples: 32}
"""


def _what_was_made(root: Path) -> dict:
    """Everything a run leaves that does not depend on the clock: versions down to the bytes of
    their files, the measurements' settings and accuracy, and the jobs in the order they ran."""
    with Project.open(root) as project:
        store = project.store
        versions = [
            (v.id, v.parent_id, v.name, v.technique, v.technique_params, v.artifact, v.size_bytes)
            for v in store.list_versions()
        ]
        measurements = sorted(
            (
                m.version_id,
                m.device,
                m.runtime,
                m.batch,
                m.threads,
                None if m.dataset_id is None else store.get_dataset(m.dataset_id).name,
                m.samples,
                None if m.accuracy is None else round(m.accuracy["top1"], 6),
            )
            for m in store.list_measurements()
        )
        jobs = [
            (j.kind, j.technique, j.input_version_id, j.output_version_id, j.state) for j in store.list_jobs()
        ]
        logs = {j.id: job_log_path(project.logs_dir, j.id) for j in store.list_jobs()}
    return {"versions": versions, "measurements": measurements, "jobs": jobs, "logs": logs}


def test_a_recipe_gives_the_same_results_from_the_command_line_the_api_and_the_window(
    qtbot, window, demo_project: Path, tmp_path: Path
):
    recipe = tmp_path / "prune-then-int8.yaml"
    recipe.write_text(RECIPE)
    copies = {way: tmp_path / way for way in ("cli", "api", "window")}
    for folder in copies.values():
        shutil.copytree(demo_project, folder)

    ran = subprocess.run(
        [
            sys.executable,
            "-m",
            "studio",
            "run",
            str(recipe),
            "--project",
            str(copies["cli"]),
            "--model",
            "v1",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert ran.returncode == 0, ran.stderr

    with Project.open(copies["api"]) as project, Engine.for_project(project) as engine:
        outcomes = list(engine.run_recipe(load_recipe(recipe), project.store.get_version(1)))
    assert [o.version.technique for o in outcomes] == ["prune.structured", "quantize.static"]

    open_project(qtbot, window, copies["window"])
    wait_for_plugins(qtbot, window)
    window.parts.optimize.dataset.set_source("digits")
    editor = window.parts.recipe
    for step in load_recipe(recipe).steps:
        editor.add_step(step.technique, step.params.model_dump(mode="json"))
    with qtbot.waitSignal(window.controller.job_added, timeout=WAIT_MS):
        editor.run_requested.emit(editor.steps())
    qtbot.waitUntil(lambda: window.parts.lineage.model.version_count() == 3, timeout=CHAIN_MS)
    qtbot.waitUntil(lambda: window.parts.jobs.model.active_count() == 0, timeout=CHAIN_MS)
    window.controller.close_project()

    made = {way: _what_was_made(folder) for way, folder in copies.items()}
    for key in ("versions", "measurements", "jobs"):
        assert made["cli"][key] == made["api"][key] == made["window"][key], key
    # the demo's own measurement of v1, then each step and the measurement of what it made (v1 has
    # figures taken the same way already, so it is not measured again)
    assert [j[0] for j in made["cli"]["jobs"]] == ["measure", "optimize", "measure", "optimize", "measure"]
    logs = {
        way: [_log_lines(log, copies[way]) for log in facts["logs"].values()] for way, facts in made.items()
    }
    assert all(lines for lines in logs["cli"]), "every job leaves a log"
    for way in ("api", "window"):
        for index, (theirs, ours) in enumerate(zip(logs[way], logs["cli"], strict=True)):
            assert theirs == ours, f"job {index + 1}, {way} vs cli: {sorted(theirs ^ ours)}"


def _log_lines(log: Path, root: Path) -> set[str]:
    """A job's log as a set of lines, without what differs between two runs of the same job: the
    time each line was written, figures measured on the clock, process ids, the project's folder
    and the step's scratch folder in it, and the timing record (how busy the machine was)."""
    lines = set()
    for line in log.read_text(encoding="utf-8").splitlines():
        if line[20:].startswith("  timing."):  # clock and machine figures, all of them
            continue
        text = line[20:].replace(str(root.resolve()), "<project>").replace(str(root), "<project>")
        text = re.sub(r"\.staging-job-\w+", ".staging-job-*", text)  # each step's own scratch folder
        lines.add(re.sub(r"\d+(\.\d+)?", "#", text))
    return lines
