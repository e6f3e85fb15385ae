"""Does `studio bench` report the runtime's own speed? Compare it with a bare timing loop.

Runs the real command line on the shipped digits ONNX model (CPU, batch 1, one thread) and, in
the same rounds, a plain loop over ``onnxruntime.InferenceSession.run`` on the same model and the
same input (the first validation sample). Every round runs both, the one that goes first
swapping each round; the figure is the median of the per-round ratios of their p50 latencies,
with its interquartile range. Target: within 5 % (0.95–1.05).

    python tests/benchmarks/bench_measurement.py [--rounds 7] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from targets import Report, add_arguments, alternate, settle_defaults

from studio.core.data import load_dataset
from studio.core.resources import resource

MODEL = resource("demo", "digits_cnn.onnx")
LOW, HIGH = 0.95, 1.05


def studio_bench_p50(project: Path, seconds: float) -> float:
    command = [sys.executable, "-m", "studio", "bench", str(MODEL), "--project", str(project)]
    command += ["--data", "digits", "--threads", "1", "--batch", "1", "--min-runs", "1000"]
    command += ["--min-seconds", f"{seconds:g}", "--json"]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)["latency_ms"]["p50"]


class PlainLoop:
    """A bare ``InferenceSession.run`` loop on the first validation sample, one thread."""

    def __init__(self) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(MODEL), options, providers=["CPUExecutionProvider"])
        x = load_dataset("digits").split("validation").arrays["x"][:1].astype(np.float32)
        self.feeds = {"input": x}

    def p50(self, runs: int) -> float:
        for _ in range(50):
            self.session.run(None, self.feeds)
        durations = []
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            self.session.run(None, self.feeds)
            durations.append(time.perf_counter_ns() - t0)
        return statistics.median(durations) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, help="rounds, each running both measurements (7)")
    parser.add_argument("--seconds", type=float, help="--min-seconds of each `studio bench` (3)")
    parser.add_argument("--runs", type=int, help="runs of each plain loop (3000)")
    add_arguments(parser)
    args = settle_defaults(
        parser.parse_args(),
        {"rounds": 7, "seconds": 3.0, "runs": 3000},
        {"rounds": 4, "seconds": 1.5, "runs": 1500},
    )
    os.environ.setdefault("STUDIO_DATA_DIR", tempfile.mkdtemp(prefix="studio-bench-"))
    with Report.from_args("measurement", args) as report, tempfile.TemporaryDirectory() as tmp:
        loop = PlainLoop()
        paired = alternate(
            lambda: studio_bench_p50(Path(tmp) / "project", args.seconds),
            lambda: loop.p50(args.runs),
            args.rounds,
        )
        print(f"model: {MODEL.name}, CPU, batch 1, 1 thread, {args.rounds} rounds, order swapped every round")
        print(f"studio bench p50 per round (ms): {', '.join(f'{v:.4f}' for v in paired.a)}")
        print(f"plain loop p50 per round (ms):   {', '.join(f'{v:.4f}' for v in paired.b)}")
        print(f"ratio per round:                 {', '.join(f'{v:.3f}' for v in paired.ratios)}")
        print(paired.describe("studio", "plain", digits=4))
        report.check(
            "studio bench p50 / plain onnxruntime loop p50",
            paired.ratio_text(3),
            f"{LOW:.2f}–{HIGH:.2f}",
            LOW <= paired.ratio <= HIGH,
            rounds=paired.rounds,
        )
        return report.summary()


if __name__ == "__main__":
    raise SystemExit(main())
