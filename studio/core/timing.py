"""Timings a user can ship on: a confidence interval on every median, two models timed in
alternating rounds, and a flag when the machine was too busy for the figures to mean much.

Two separate timing runs compare conditions as much as models: on a shared machine a burst of
other work lands in one of them and a 1.0× change reads as 1.5×. So a before/after comparison
times both models in one process, in rounds (A B, B A, … in random order, each round a short
block of runs of each), and takes the median over rounds of the per-round ratio. The rounds run
until the 95 % confidence interval of that median is within a few percent, or a time cap; a
difference the interval covers is "no measurable difference", never a speed-up.
"""

from __future__ import annotations

import gc
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FASTER, SLOWER, SAME = "faster", "slower", "no measurable difference"
TARGET_HALF_WIDTH = 0.03  # stop when the ratio's 95 % interval is within ±3 % of it
MIN_ROUNDS = 12
ROUND_SECONDS = 0.02  # each model's block in a round lasts about this long
NOISY_SPREAD = 3.0  # p90 / p50 above this: the runs themselves disagree


def median_ci(values: np.ndarray | list[float], level_z: float = 1.96) -> tuple[float, float]:
    """A distribution-free 95 % confidence interval of the median, from order statistics.

    With n values, the median lies between the k-th smallest and the k-th largest, where
    k = ⌊(n − 1.96 √n) / 2⌋: a binomial argument that assumes nothing about the distribution,
    which for latencies (a floor and a long tail) is the honest choice.
    """
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    n = len(ordered)
    if n == 0:
        return (math.nan, math.nan)
    k = max(0, math.floor((n - level_z * math.sqrt(n)) / 2))
    return float(ordered[k]), float(ordered[n - 1 - k])


def verdict(low: float, high: float) -> str:
    """``faster`` or ``slower`` only when the whole interval of the speed-up lies beyond the
    timing's resolution (±3 %): a model timed against itself differs by a percent or so (which
    runs first, where its memory landed), and that is no speed-up."""
    if low > 1.0 + TARGET_HALF_WIDTH:
        return FASTER
    if high < 1.0 / (1.0 + TARGET_HALF_WIDTH):
        return SLOWER
    return SAME


@dataclass(frozen=True)
class PairedTiming:
    """Both models' run times (ns), and the speed-up: reference time over model time per round."""

    model_ns: list[int]
    reference_ns: list[int]
    speedup: float
    ci95: tuple[float, float]
    rounds: int

    @property
    def verdict(self) -> str:
        return verdict(*self.ci95)

    def to_dict(self) -> dict:
        return {
            "speedup": self.speedup,
            "ci95": list(self.ci95),
            "rounds": self.rounds,
            "verdict": self.verdict,
        }


def time_paired(
    run_model: Callable[[], object],
    run_reference: Callable[[], object],
    *,
    warmup: int,
    min_seconds: float,
    max_seconds: float,
    seed: int = 0,
) -> PairedTiming:
    """Time two models in alternating rounds until their speed-up is known to ±3 % (or the cap).

    Each round runs a block of each model, in a random order, so that neither always runs
    first (after the other has warmed or evicted the caches). The garbage collector is paused.
    """
    for _ in range(warmup):
        run_model()
        run_reference()
    block = _block_size(run_model, run_reference)
    rng = np.random.default_rng(seed)
    model_ns: list[int] = []
    reference_ns: list[int] = []
    ratios: list[float] = []
    clock = time.perf_counter_ns
    with gc_paused():
        start = clock()
        while True:
            medians = {}
            for which in rng.permutation(2):
                run, sink = (run_model, model_ns) if which == 0 else (run_reference, reference_ns)
                durations = []
                for _ in range(block):
                    t0 = clock()
                    run()
                    durations.append(clock() - t0)
                sink.extend(durations)
                medians[which] = float(np.median(durations))
            ratios.append(medians[1] / medians[0] if medians[0] > 0 else math.inf)
            elapsed = (clock() - start) / 1e9
            if elapsed >= max_seconds:
                break
            if len(ratios) >= MIN_ROUNDS and elapsed >= min_seconds and _settled(ratios):
                break
    return PairedTiming(model_ns, reference_ns, float(np.median(ratios)), median_ci(ratios), len(ratios))


@contextmanager
def gc_paused() -> Iterator[None]:
    """The garbage collector off while runs are timed, so that the figures are the runtime's."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _settled(ratios: list[float]) -> bool:
    low, high = median_ci(ratios)
    middle = float(np.median(ratios))
    return (high - low) / 2 <= TARGET_HALF_WIDTH * middle


def _block_size(*runs: Callable[[], object]) -> int:
    """Runs per model per round: enough for about ROUND_SECONDS of the slower model, 1 to 50."""
    slowest = 0.0
    for run in runs:
        t0 = time.perf_counter()
        run()
        slowest = max(slowest, time.perf_counter() - t0)
    return int(min(50, max(1, ROUND_SECONDS // max(slowest, 1e-6))))


# -- how busy the machine was ---------------------------------------------------------------------


@dataclass(frozen=True)
class CpuSample:
    """Machine-wide CPU time (from /proc/stat) and this process's own, at one moment."""

    busy: float  # seconds all CPUs spent not idle
    total: float  # seconds of all CPUs
    own: float  # seconds this process (every thread) used
    load: float | None  # 1-minute load average

    @classmethod
    def now(cls) -> CpuSample:
        busy, total = _proc_stat()
        times = os.times()
        try:
            load = os.getloadavg()[0]
        except OSError:
            load = None
        return cls(busy, total, times.user + times.system, load)


def _proc_stat() -> tuple[float, float]:
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return 0.0, 0.0
    ticks = [int(v) for v in fields[:8]]
    per_second = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    idle = ticks[3] + ticks[4]  # idle and iowait
    return (sum(ticks) - idle) / per_second, sum(ticks) / per_second


def machine_load(before: CpuSample, after: CpuSample, cores: int) -> dict:
    """What else ran while the timing ran: other processes' average number of busy CPUs, and the
    load averages before and after (``None`` where the system does not tell)."""
    wall_cpus = after.total - before.total
    others = None
    if wall_cpus > 0:
        seconds = wall_cpus / max(cores, 1)
        others = max(0.0, (after.busy - before.busy) - (after.own - before.own)) / seconds
    return {
        "cores": cores,
        "other_busy_cpus": None if others is None else round(others, 2),
        "load_before": before.load,
        "load_after": after.load,
    }


def noise(p50: float, p90: float, load: dict, threads: int) -> str | None:
    """Why the figures are not to be trusted as they stand, in a few words; None when they are.

    The runs disagree (p90 far above p50), or other processes kept busy more CPUs than the
    timing's threads left free, so the timed threads had to share theirs.
    """
    reasons = []
    if p50 > 0 and p90 / p50 > NOISY_SPREAD:
        reasons.append(f"p90/p50 = {p90 / p50:.1f}×")
    others, cores = load.get("other_busy_cpus"), load.get("cores") or 1
    if others is not None and others > max(cores - threads, 0) + 0.25:
        reasons.append(f"other processes kept {others:.1f} of {cores} CPUs busy")
    return "noisy: " + ", ".join(reasons) if reasons else None
