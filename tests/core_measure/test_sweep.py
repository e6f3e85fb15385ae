"""The batch sweep's plan and its rule for stopping: out of memory, or throughput that stops growing."""

from __future__ import annotations

import pytest

from studio.api import StudioError
from studio.core.benchmark import OUT_OF_MEMORY
from studio.core.models import TensorSpec
from studio.core.sweep import run_sweep, sweep_batches, sweep_refusal


def test_batches_double_up_to_the_largest_asked_for() -> None:
    assert sweep_batches(1) == [1]
    assert sweep_batches(8) == [1, 2, 4, 8]
    assert sweep_batches(100) == [1, 2, 4, 8, 16, 32, 64, 100]
    with pytest.raises(StudioError, match="at least 1"):
        sweep_batches(0)


def _sweep(throughputs: dict[int, float], max_batch: int = 256, out_of_memory_from: int | None = None):
    """A sweep over a table of throughputs by batch; batches from ``out_of_memory_from`` on fail the
    way a measurement that ran out of memory fails (studio.core.benchmark)."""
    asked: list[int] = []

    def measure_at(batch: int) -> tuple[int, float]:
        asked.append(batch)
        if out_of_memory_from is not None and batch >= out_of_memory_from:
            raise StudioError(f"{OUT_OF_MEMORY} at batch {batch} on cuda:0: CUDA out of memory")
        return batch, throughputs[batch]

    return run_sweep(measure_at, lambda step: step[1], max_batch), asked


def test_it_stops_when_throughput_grows_less_than_5_percent_twice_in_a_row() -> None:
    table = {1: 100.0, 2: 190.0, 4: 196.0, 8: 300.0, 16: 310.0, 32: 318.0, 64: 900.0}
    sweep, asked = _sweep(table)
    assert asked == [1, 2, 4, 8, 16, 32]  # 4 gained 3 % but 8 grew again; 16 and 32 did not
    assert [batch for batch, _ in sweep.steps] == asked
    assert sweep.stopped == "throughput grew less than 5 % at 2 doublings in a row, up to batch 32"


def test_a_drop_in_throughput_counts_as_no_gain() -> None:
    sweep, asked = _sweep({1: 100.0, 2: 90.0, 4: 80.0, 8: 1000.0})
    assert asked == [1, 2, 4] and "up to batch 4" in sweep.stopped


def test_it_stops_at_the_first_batch_that_does_not_fit() -> None:
    sweep, asked = _sweep({1: 10.0, 2: 20.0, 4: 40.0}, out_of_memory_from=8)
    assert asked == [1, 2, 4, 8] and len(sweep.steps) == 3
    assert sweep.stopped.startswith("batch 8 did not fit in memory (out of memory at batch 8 on cuda:0")


def test_it_stops_at_the_largest_batch_asked_for() -> None:
    sweep, asked = _sweep({b: float(b) for b in (1, 2, 4, 6)}, max_batch=6)
    assert asked == [1, 2, 4, 6] and sweep.stopped == "reached the largest batch asked for (6)"


def test_out_of_memory_at_batch_one_and_other_errors_end_it_with_the_error() -> None:
    with pytest.raises(StudioError, match="^out of memory at batch 1"):
        _sweep({}, out_of_memory_from=1)

    def broken(batch: int) -> float:
        raise StudioError("the model's input 'x' has a dimension 'n' of unknown size")

    with pytest.raises(StudioError, match="unknown size"):
        run_sweep(broken, float)


def test_models_whose_batch_cannot_change_are_named() -> None:
    free = [TensorSpec("x", ("batch", 4), "float32")]
    fixed = [TensorSpec("x", (4, 4), "float32")]
    stream = [TensorSpec("x", (1, 512), "float32"), TensorSpec("state", (2, 1, 128), "float32", role="state")]
    assert sweep_refusal(free) is None
    assert (
        sweep_refusal(fixed)
        == "the model was exported for batches of exactly 4: a batch sweep cannot change its batch"
    )
    assert sweep_refusal(stream).startswith("the model has a state input, which holds one stream")
