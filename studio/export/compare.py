"""The same inputs through an export and its source, to say how far the export drifted.

The inputs are real samples where the project knows a dataset the model can take, so that the
difference is the one users will see; otherwise seeded random inputs, the same on every run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from studio.api import StudioError, TensorSpec
from studio.core.benchmark import random_feeds
from studio.core.data import DatasetSpec, bind
from studio.core.runtime import Runner
from studio.store import Store

SAMPLES = 32


def sample_count(*fixed_batches: int | None) -> int:
    """About SAMPLES samples, a whole number of batches for every model with a fixed batch size."""
    fixed = [b for b in fixed_batches if b]
    step = math.lcm(*fixed) if fixed else 1
    return step * max(1, SAMPLES // step)


def comparison_feeds(
    store: Store,
    inputs: Sequence[TensorSpec],
    count: int,
    *,
    input_shapes: Sequence[tuple[int, ...]] | None = None,
) -> tuple[dict[str, np.ndarray], str]:
    """``count`` samples from the newest project dataset that fits the inputs, else seeded random ones."""
    for record in reversed(store.list_datasets()):
        feeds = _dataset_feeds(record.spec, list(inputs), count)
        if feeds is not None:
            return feeds, f"{count} validation samples of dataset '{record.name}'"
    feeds = random_feeds(list(inputs), count, seed=0, input_shapes=input_shapes)
    return feeds, f"{count} seeded random samples"


def _dataset_feeds(spec: dict, inputs: list[TensorSpec], count: int) -> dict[str, np.ndarray] | None:
    """A dataset that moved, changed shape or no longer loads is skipped, not an error."""
    try:
        dataset = DatasetSpec.model_validate(spec).load().split("validation")
        feeds = bind(dataset, inputs)
    except (StudioError, ValueError, OSError):
        return None
    if len(dataset) < count:
        return None
    return {name: array[:count] for name, array in feeds.items()}


def run_in_batches(runner: Runner, feeds: dict[str, np.ndarray], batch: int) -> list[np.ndarray]:
    """Every output of the model for every sample, run ``batch`` samples at a time."""
    count = len(next(iter(feeds.values())))
    parts: list[list[np.ndarray]] = []
    for start in range(0, count, batch):
        chunk = {name: array[start : start + batch] for name, array in feeds.items()}
        parts.append([np.asarray(out) for out in runner.run(_renamed(chunk, runner.inputs))])
    return [np.concatenate(column, axis=0) for column in zip(*parts, strict=True)]


def _renamed(feeds: dict[str, np.ndarray], inputs: Sequence[TensorSpec]) -> dict[str, np.ndarray]:
    """The exporters may rename inputs; they keep their order."""
    if all(spec.name in feeds for spec in inputs):
        return {spec.name: feeds[spec.name] for spec in inputs}
    return {spec.name: array for spec, array in zip(inputs, feeds.values(), strict=True)}


def max_abs_difference(source: Sequence[np.ndarray], export: Sequence[np.ndarray]) -> float:
    """The largest difference over every output, refusing outputs that do not line up."""
    if len(source) != len(export):
        raise StudioError(f"the export gives {len(export)} outputs but its source gives {len(source)}")
    worst = 0.0
    for index, (a, b) in enumerate(zip(source, export, strict=True)):
        if a.shape != b.shape:
            raise StudioError(
                f"output {index} of the export has shape {b.shape} but its source gives {a.shape}"
            )
        if a.size:
            diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
            if np.isnan(diff):
                return diff  # a NaN on either side is the worst difference there is
            worst = max(worst, diff)
    return worst
