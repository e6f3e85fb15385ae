"""The demo project: the shipped digits CNN imported, measured on the digits sample, ready to optimize.

It is what a first run offers, and what README's first command shows on a fresh machine.
Running it again reuses the project and the baseline and adds a fresh measurement.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from studio.core.data import DatasetSpec
from studio.core.paths import default_demo_project
from studio.core.resources import resource
from studio.engine import AUTO_MEASURE, Engine
from studio.project import Project

DEMO_SETTINGS = AUTO_MEASURE  # the figures every step is measured with, so the first step has its 'before'


def demo_model_files() -> tuple[Path, Path]:
    """The shipped architecture file and its weights (part of the studio, so trusted like its code)."""
    return resource("demo", "digits_cnn.py"), resource("demo", "digits_cnn.safetensors")


def run_demo(project_dir: Path | None = None, progress: Callable[[str], None] | None = None) -> dict:
    say = progress or (lambda _message: None)
    root = Path(project_dir) if project_dir else default_demo_project()
    architecture, weights = demo_model_files()
    with Project.open_or_create(root, name="Digits demo") as project:
        say(f"Project: {project.root}")
        baseline = project.import_model(architecture, weights=weights, name="baseline", trust=True)
        say(
            f"Imported the digits CNN as version {baseline.id} ({baseline.name}); measuring on CPU, batch 1, 1 thread…"
        )
        with Engine.for_project(project) as engine:
            measurement = engine.measure(
                baseline, dataset=DatasetSpec(source="digits"), settings=DEMO_SETTINGS
            )
        report = project.measurement_report(measurement)
        return {
            "project": str(project.root),
            "baseline": {**baseline.to_dict(), "measurements": [report]},
        }
