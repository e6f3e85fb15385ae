"""What does running a job in a worker cost? A trivial job through the pool versus called inline.

Measures, on a pool of long-lived spawned workers that is already warm:
- the round trip of one trivial job (submit → started → succeeded event), median over many
  jobs, one at a time, against calling the same function inline;
- the throughput of 100 trivial jobs queued at once on 2 workers (jobs/s);
- the same 100 jobs through the job manager, which also records every state in a real
  project database (jobs/s).

    python tests/benchmarks/bench_jobs.py [--jobs 100] [--rounds 200]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path

from studio.jobs.manager import JobManager
from studio.jobs.pool import LocalPool
from studio.jobs.spec import JobSpec
from studio.jobs.targets import echo
from studio.project import Project

TRIVIAL = JobSpec(kind="measure", target="studio.jobs.targets:echo", kwargs={"n": 1})


def inline_ms(rounds: int) -> float:
    times = []
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):  # a worker prints to its log
        for _ in range(rounds):
            start = time.perf_counter()
            echo(lambda fraction, message="": None, lambda: False, n=1)
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def pool_round_trip_ms(pool: LocalPool, logs: Path, rounds: int) -> float:
    times = []
    for job_id in range(rounds):
        start = time.perf_counter()
        pool.submit(job_id, TRIVIAL, logs / f"{job_id}.log")
        while not pool.events.get().final:
            pass
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def pool_throughput(pool: LocalPool, logs: Path, jobs: int, first_id: int) -> float:
    start = time.perf_counter()
    for job_id in range(first_id, first_id + jobs):
        pool.submit(job_id, TRIVIAL, logs / f"{job_id}.log")
    finished = 0
    while finished < jobs:
        finished += pool.events.get().final
    return jobs / (time.perf_counter() - start)


def manager_throughput(folder: Path, jobs: int) -> float:
    with Project.create(folder / "project") as project:
        pool = LocalPool(devices=[], cpu_workers=2)
        pool.wait_ready(60)
        manager = JobManager(project.store, pool, project.logs_dir)
        try:
            start = time.perf_counter()
            ids = [manager.submit(TRIVIAL) for _ in range(jobs)]
            for job_id in ids:
                manager.wait(job_id, 120)
            return jobs / (time.perf_counter() - start)
        finally:
            manager.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with LocalPool(devices=[], cpu_workers=2) as pool:
            pool.wait_ready(60)
            pool_round_trip_ms(pool, folder, 10)  # warm-up: imports in the workers
            inline = inline_ms(args.rounds)
            round_trip = pool_round_trip_ms(pool, folder, args.rounds)
            throughput = pool_throughput(pool, folder, args.jobs, args.rounds)
        recorded = manager_throughput(folder, args.jobs)
    print(f"trivial job inline:                 {inline:8.3f} ms (median of {args.rounds})")
    print(
        f"trivial job through the pool:       {round_trip:8.3f} ms (median of {args.rounds}, one at a time)"
    )
    print(f"overhead of the pool:               {round_trip - inline:8.3f} ms per job")
    print(f"{args.jobs} trivial jobs on 2 workers:      {throughput:8.1f} jobs/s (pool only)")
    print(f"{args.jobs} trivial jobs with the manager:  {recorded:8.1f} jobs/s (states recorded in SQLite)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
