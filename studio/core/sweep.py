"""A batch sweep: throughput at batches 1, 2, 4, … until memory runs out or throughput stops growing.

Each batch is one ordinary measurement (recorded like any other, tagged with the sweep's label);
this module holds only the plan and the rule for stopping, so the command line and the window
sweep the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from studio.api import StudioError
from studio.core.benchmark import OUT_OF_MEMORY
from studio.core.evaluate import fixed_batch
from studio.core.input_roles import BATCH, STATE
from studio.core.models import TensorSpec

DEFAULT_MAX_BATCH = 256
MIN_GAIN = 0.05  # a doubling that adds less throughput than this is no gain
FLAT_STEPS = 2  # stop after this many such doublings in a row

T = TypeVar("T")


def sweep_batches(max_batch: int) -> list[int]:
    """1, 2, 4, … up to ``max_batch``, which ends the list even when it is not a power of two."""
    if max_batch < 1:
        raise StudioError(f"the largest batch must be at least 1, not {max_batch}")
    batches = [1]
    while batches[-1] * 2 <= max_batch:
        batches.append(batches[-1] * 2)
    if batches[-1] != max_batch:
        batches.append(max_batch)
    return batches


def sweep_label() -> str:
    """What ties a sweep's measurements together (BenchmarkSettings.sweep)."""
    return uuid.uuid4().hex[:12]


def sweep_refusal(inputs: Sequence[TensorSpec]) -> str | None:
    """Why a sweep cannot change this model's batch, in one sentence; None when it can."""
    if any(spec.role == STATE for spec in inputs):
        return "the model has a state input, which holds one stream: a batch sweep cannot change its batch"
    fixed = fixed_batch([spec for spec in inputs if spec.role == BATCH])
    if fixed is not None:
        return f"the model was exported for batches of exactly {fixed}: a batch sweep cannot change its batch"
    return None


@dataclass
class Sweep(Generic[T]):
    """The measurements a sweep made, smallest batch first, and why it stopped where it did."""

    steps: list[T] = field(default_factory=list)
    stopped: str = ""


def run_sweep(
    measure_at: Callable[[int], T], throughput: Callable[[T], float], max_batch: int = DEFAULT_MAX_BATCH
) -> Sweep[T]:
    """Measure at each batch of :func:`sweep_batches` until one runs out of memory (its error
    begins "out of memory", studio.core.benchmark), throughput gains less than MIN_GAIN
    FLAT_STEPS times in a row, or ``max_batch`` is reached. Any other error ends the sweep with it;
    so does running out of memory at batch 1, where nothing was measured."""
    sweep: Sweep[T] = Sweep()
    flat = 0
    for batch in sweep_batches(max_batch):
        try:
            step = measure_at(batch)
        except StudioError as error:
            if not str(error).startswith(OUT_OF_MEMORY) or not sweep.steps:
                raise
            sweep.stopped = f"batch {batch} did not fit in memory ({error})"
            return sweep
        if sweep.steps and throughput(step) < throughput(sweep.steps[-1]) * (1 + MIN_GAIN):
            flat += 1
        else:
            flat = 0
        sweep.steps.append(step)
        if flat >= FLAT_STEPS:
            sweep.stopped = f"throughput grew less than {MIN_GAIN * 100:.0f} % at {FLAT_STEPS} doublings in a row, up to batch {batch}"
            return sweep
    sweep.stopped = f"reached the largest batch asked for ({max_batch})"
    return sweep
