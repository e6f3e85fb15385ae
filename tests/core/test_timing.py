"""The arithmetic behind paired timings and the noise flag, on numbers whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.timing import (
    FASTER,
    SAME,
    SLOWER,
    CpuSample,
    machine_load,
    median_ci,
    noise,
    time_paired,
    verdict,
)


def test_the_median_interval_holds_the_median_and_narrows_with_more_values():
    rng = np.random.default_rng(0)
    few, many = rng.lognormal(0, 0.3, 30), rng.lognormal(0, 0.3, 3000)
    for values in (few, many):
        low, high = median_ci(values)
        assert low <= np.median(values) <= high
    assert np.subtract(*median_ci(many)[::-1]) < np.subtract(*median_ci(few)[::-1]) / 5
    # coverage: over many samples of a known distribution, the interval holds the true median ~95 %
    hits = sum(low <= 1.0 <= high for low, high in (median_ci(rng.lognormal(0, 0.3, 50)) for _ in range(400)))
    assert 0.90 <= hits / 400 <= 0.995


@pytest.mark.parametrize(
    ("interval", "expected"),
    [
        ((1.9, 2.1), FASTER),
        ((0.4, 0.5), SLOWER),
        ((0.98, 1.02), SAME),
        ((1.01, 1.02), SAME),
        ((0.9, 1.2), SAME),
    ],
)
def test_only_an_interval_beyond_the_resolution_is_a_verdict(interval, expected):
    assert verdict(*interval) == expected


def test_noise_names_spread_and_other_processes():
    quiet = {"cores": 2, "other_busy_cpus": 0.1}
    assert noise(1.0, 1.2, quiet, threads=1) is None
    assert noise(0.40, 8.6, quiet, threads=1) == "noisy: p90/p50 = 21.5×"
    busy = {"cores": 2, "other_busy_cpus": 1.9}
    assert noise(1.0, 1.2, busy, threads=1) == "noisy: other processes kept 1.9 of 2 CPUs busy"
    assert noise(1.0, 1.2, {"cores": 8, "other_busy_cpus": 1.9}, threads=1) is None  # cores to spare


def test_machine_load_leaves_out_this_process():
    before = CpuSample(busy=100.0, total=400.0, own=10.0, load=0.5)
    after = CpuSample(busy=103.0, total=404.0, own=11.0, load=0.7)  # 2 s of wall time on 2 cores
    load = machine_load(before, after, cores=2)
    assert load == {"cores": 2, "other_busy_cpus": 1.0, "load_before": 0.5, "load_after": 0.7}


def test_paired_rounds_alternate_and_stop_once_the_ratio_is_known():
    order = []
    timed = time_paired(
        lambda: order.append("a"), lambda: order.append("b"), warmup=1, min_seconds=0, max_seconds=5
    )
    assert timed.rounds >= 12 and len(timed.model_ns) == len(timed.reference_ns)
    block = len(timed.model_ns) // timed.rounds
    rounds = order[4:]  # after one warm-up run each and one run each to size the blocks
    firsts = {rounds[r * 2 * block] for r in range(timed.rounds)}
    assert firsts == {"a", "b"}  # neither model always runs first


def test_node_times_leave_out_the_warm_up_and_average_the_runs():
    from studio.core.layer_times import node_times

    def run(ts: int, conv_us: int) -> list[dict]:
        return [
            {"cat": "Session", "name": "model_run", "ts": ts, "dur": 100},
            {
                "cat": "Node",
                "name": "conv_kernel_time",
                "ts": ts + 1,
                "dur": conv_us,
                "args": {"op_name": "FusedConv"},
            },
            {"cat": "Node", "name": "gemm_kernel_time", "ts": ts + 2, "dur": 10, "args": {"op_name": "Gemm"}},
            {"cat": "Node", "name": "conv_fence_before", "ts": ts + 3, "dur": 0},
        ]

    events = run(0, 1000) + run(1000, 30) + run(2000, 50)  # the first run is the warm-up
    rows = node_times(events, skip=1)
    assert [(r["name"], r["op"]) for r in rows] == [("conv", "FusedConv"), ("gemm", "Gemm")]
    assert rows[0]["ms"] == pytest.approx(0.040) and rows[1]["ms"] == pytest.approx(0.010)
    assert rows[0]["share"] == pytest.approx(0.8)
