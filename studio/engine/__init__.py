"""The one engine that plans and runs a project's work (steps, recipes, measurements) as jobs,
for the command line, the Python API and the window alike.

Names are loaded on first use, so that ``studio.engine.executors`` (what the window needs at
start) stays cheap to import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_HOMES = {
    "PoolSettings": "studio.engine.executors",
    "parse_executor": "studio.engine.executors",
    "Engine": "studio.engine.service",
    "JobCancelled": "studio.engine.service",
    "as_dataset": "studio.engine.service",
    "AUTO_MEASURE": "studio.engine.steps",
    "StepOutcome": "studio.engine.steps",
    "outcome_report": "studio.engine.steps",
    "recipe_of": "studio.engine.steps",
}

__all__ = [
    "AUTO_MEASURE",
    "Engine",
    "JobCancelled",
    "PoolSettings",
    "StepOutcome",
    "as_dataset",
    "outcome_report",
    "parse_executor",
    "recipe_of",
]

if TYPE_CHECKING:
    from studio.engine.executors import PoolSettings, parse_executor
    from studio.engine.service import Engine, JobCancelled, as_dataset
    from studio.engine.steps import AUTO_MEASURE, StepOutcome, outcome_report, recipe_of


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'studio.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
