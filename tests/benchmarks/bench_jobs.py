"""What does running a job in a worker cost? A trivial job through the pool versus called inline.

Measures, on pools of long-lived spawned workers that are already warm:
- the round trip of one trivial job (submit → started → succeeded event), one at a time,
  against calling the same function inline, the two in alternating rounds (the one that goes
  first swapping every round): the median per-round difference (the pool's overhead per job)
  and ratio, with their interquartile ranges;
- the throughput of a batch of trivial jobs queued at once on 2 workers, through the pool alone
  and through the job manager, which also records every state in a real project database: one
  batch of each per round, in alternating order, with the median per-round ratio.

The job is the ``echo`` stand-in, loaded by the workers as ``standins:echo`` from tests/jobs.

    python tests/benchmarks/bench_jobs.py [--jobs 100] [--rounds 200] [--batches 5] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "jobs"))  # standins, for the workers too

from standins import echo  # noqa: E402
from targets import Report, add_arguments, alternate, settle_defaults, timed_ms  # noqa: E402

from studio.jobs.manager import JobManager  # noqa: E402
from studio.jobs.pool import LocalPool  # noqa: E402
from studio.jobs.spec import JobSpec  # noqa: E402
from studio.project import Project  # noqa: E402

TRIVIAL = JobSpec(kind="measure", target="standins:echo", kwargs={"n": 1})
WORKERS = 2


class Jobs:
    """A warm pool used directly, and a warm job manager (with its own pool) on a project."""

    def __init__(self, folder: Path, stack: contextlib.ExitStack) -> None:
        self.logs = folder / "logs"
        self.logs.mkdir()
        self.pool = stack.enter_context(LocalPool(devices=[], cpu_workers=WORKERS))
        project = stack.enter_context(Project.create(folder / "project"))
        managed = LocalPool(devices=[], cpu_workers=WORKERS)
        self.manager = JobManager(project.store, managed, project.logs_dir)
        stack.callback(self.manager.close)
        self.pool.wait_ready(60)
        managed.wait_ready(60)
        self.next_id = 0

    def _submit(self) -> None:
        self.pool.submit(self.next_id, TRIVIAL, self.logs / f"{self.next_id}.log")
        self.next_id += 1

    def _final(self) -> None:
        """Wait for the next job to end; a job that did not succeed stops the benchmark."""
        while not (event := self.pool.events.get()).final:
            pass
        if event.state != "succeeded":
            raise RuntimeError(f"a trivial job ended {event.state}: {event.error or event.message}")

    def round_trip(self) -> None:
        self._submit()
        self._final()

    def pool_batch(self, jobs: int) -> float:
        """Jobs per second, all queued at once on the pool alone."""
        start = time.perf_counter()
        for _ in range(jobs):
            self._submit()
        for _ in range(jobs):
            self._final()
        return jobs / (time.perf_counter() - start)

    def manager_batch(self, jobs: int) -> float:
        """Jobs per second, all queued at once through the manager, every state recorded."""
        start = time.perf_counter()
        ids = [self.manager.submit(TRIVIAL) for _ in range(jobs)]
        records = [self.manager.wait(job_id, 120) for job_id in ids]
        seconds = time.perf_counter() - start
        states = {record.state for record in records}
        if states != {"succeeded"}:
            raise RuntimeError(f"trivial jobs through the manager ended {', '.join(sorted(states))}")
        return jobs / seconds


def inline() -> None:
    echo(lambda fraction, message="": None, lambda: False, n=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, help="trivial jobs per throughput batch (100)")
    parser.add_argument("--rounds", type=int, help="round-trip rounds, one job each way per round (200)")
    parser.add_argument("--batches", type=int, help="throughput rounds, one batch each way per round (5)")
    add_arguments(parser)
    args = settle_defaults(
        parser.parse_args(),
        {"jobs": 100, "rounds": 200, "batches": 5},
        {"jobs": 40, "rounds": 60, "batches": 3},
    )
    with (
        Report.from_args("jobs", args) as report,
        tempfile.TemporaryDirectory() as tmp,
        contextlib.ExitStack() as stack,
    ):
        jobs = Jobs(Path(tmp), stack)
        for _ in range(10):  # warm-up: imports in the workers
            jobs.round_trip()
        jobs.manager_batch(WORKERS * 2)

        with (
            open(os.devnull, "w") as quiet,
            contextlib.redirect_stdout(quiet),
        ):  # echo prints; a worker's goes to its log
            trip = alternate(lambda: timed_ms(jobs.round_trip), lambda: timed_ms(inline), args.rounds)
        print(f"trivial job, one at a time: {trip.describe('pool', 'inline', digits=4)}")
        report.figure(
            "trivial job round trip through the pool",
            f"{statistics.median(trip.a):.3f} ms",
            rounds=trip.rounds,
        )
        report.figure("pool overhead per job (pool − inline)", trip.difference_text(), rounds=trip.rounds)
        report.figure("trivial job, pool/inline", trip.ratio_text(0), rounds=trip.rounds)

        batches = alternate(
            lambda: jobs.manager_batch(args.jobs), lambda: jobs.pool_batch(args.jobs), args.batches
        )
        print(
            f"{args.jobs} trivial jobs on {WORKERS} workers, jobs/s: "
            f"{batches.describe('manager', 'pool', unit='jobs/s', digits=1)}"
        )
        report.figure(
            f"{args.jobs} trivial jobs on {WORKERS} workers, pool only",
            f"{statistics.median(batches.b):.1f} jobs/s",
            rounds=batches.rounds,
        )
        report.figure(
            f"{args.jobs} trivial jobs on {WORKERS} workers, with the manager",
            f"{statistics.median(batches.a):.1f} jobs/s",
            rounds=batches.rounds,
        )
        report.figure(
            "throughput, manager/pool only",
            batches.ratio_text(3),
            rounds=batches.rounds,
        )
        return report.summary()


if __name__ == "__main__":
    raise SystemExit(main())
