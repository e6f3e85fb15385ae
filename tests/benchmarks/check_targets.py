"""Run every benchmark script once, one after the other, and print one table of their targets.

Each script runs in its own process with ``--targets-json`` and writes its records there; its
full report goes to a log file. A script that crashes or runs out of time shows as a row
"failed: <reason>" beside whatever it had recorded before. Figures without a target are listed
too, but only targets count in the summary line.

    python tests/benchmarks/check_targets.py [--only NAME ...] [--quick] [--logs DIR]

Exit status: 0 when the table was made (whether or not every target was met), 2 when it could
not be (an unknown benchmark name, an unusable log folder).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from targets import Target, read_records, verdict

HERE = Path(__file__).resolve().parent
BENCHMARKS = (
    "agreement",
    "corpus",
    "distillation",
    "encoder_peers",
    "jobs",
    "measurement",
    "pruning",
    "quantization",
    "refusals",
    "ui",
)
TIMEOUT_S = {
    "corpus": 2400,
    "encoder_peers": 1800,
    "distillation": 3600,
    "quantization": 2400,
    "pruning": 1800,
    "ui": 1500,
}
DEFAULT_TIMEOUT_S = 900


def run_one(name: str, quick: bool, timeout: float, logs: Path) -> tuple[list[Target], str | None, float]:
    """(records, failure reason or None, seconds) of one script."""
    out, log = logs / f"{name}.json", logs / f"{name}.log"
    out.unlink(missing_ok=True)
    command = [sys.executable, str(HERE / f"bench_{name}.py"), "--targets-json", str(out)]
    if quick:
        command.append("--quick")
    start = time.perf_counter()
    with log.open("w", encoding="utf-8") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True, env=os.environ.copy()
        )
        try:
            code = process.wait(timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the script and every process it started
            process.wait()
            code, timed_out = None, True
    seconds = time.perf_counter() - start
    records, completed, error = [], False, None
    if out.is_file():
        records, completed, error = read_records(out)
    if timed_out:
        return records, f"timed out after {timeout:.0f} s", seconds
    if not completed:
        return records, error or last_line(log) or f"exited with status {code}", seconds
    return records, None, seconds


def last_line(log: Path) -> str:
    """The last line that looks like an error in a log, else its last non-empty line."""
    lines = [line.strip() for line in log.read_text(encoding="utf-8", errors="replace").splitlines()]
    lines = [line for line in lines if line]
    errors = [line for line in lines if "Error" in line.split(":", 1)[0] or line.startswith("Killed")]
    found = (errors or lines or [""])[-1]
    return found[:200]


def table(rows: list[list[str]]) -> str:
    """Aligned columns; a row of two cells (a failed script) runs its second cell across the rest."""
    header = ["benchmark", "measured", "target", "figure", "rounds / samples", "verdict"]
    full = [header, *(row for row in rows if len(row) == len(header))]
    widths = [max(len(row[i]) for row in full) for i in range(len(header))]
    widths[0] = max(widths[0], *(len(row[0]) for row in rows))

    def line(cells: list[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=False)).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def record_row(record: Target) -> list[str]:
    target = "—" if record.target is None else record.target
    return [record.benchmark, record.name, target, record.measured, record.counts, verdict(record.met)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"run only this benchmark (repeat, or separate with commas): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--quick", action="store_true", help="the scripts' smaller settings")
    parser.add_argument(
        "--logs", type=Path, help="folder for each script's report and JSON (a new temporary one)"
    )
    parser.add_argument("--timeout", type=float, help="seconds any one script may run (its own default)")
    args = parser.parse_args()

    chosen = list(BENCHMARKS)
    if args.only:
        wanted = [
            n.strip().removeprefix("bench_").removesuffix(".py") for v in args.only for n in v.split(",")
        ]
        unknown = [n for n in wanted if n not in BENCHMARKS]
        if unknown:
            parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
        chosen = [n for n in BENCHMARKS if n in wanted]
    try:
        logs = args.logs or Path(tempfile.mkdtemp(prefix="studio-benchmarks-"))
        logs.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"cannot use the log folder: {error}", file=sys.stderr)
        return 2

    rows, met, judged, figures, failed = [], 0, 0, 0, 0
    for name in chosen:
        timeout = args.timeout or TIMEOUT_S.get(name, DEFAULT_TIMEOUT_S)
        print(f"running bench_{name}.py ...", file=sys.stderr, flush=True)
        records, failure, seconds = run_one(name, args.quick, timeout, logs)
        print(f"  done in {seconds:.0f} s", file=sys.stderr, flush=True)
        for record in records:
            rows.append(record_row(record))
            if record.met is None:
                figures += 1
            else:
                judged += 1
                met += bool(record.met)
        if failure is not None:
            failed += 1
            rows.append([name, f"failed: {failure}"])

    print(table(rows))
    also = f"; {failed} of {len(chosen)} benchmarks failed" if failed else ""
    print(f"\n{met} of {judged} targets met ({figures} figures without a target){also}")
    print(f"each script's report: {logs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
