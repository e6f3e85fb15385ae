"""Does `studio bench` report the runtime's own speed? Compare it with a bare timing loop.

Runs the real command line on the shipped digits ONNX model (CPU, batch 1, one thread) and, in
the same run, a plain loop over ``onnxruntime.InferenceSession.run`` on the same model and the
same input (the first validation sample). Prints both medians and their ratio; goal: within 5 %.

    python tests/benchmarks/bench_measurement.py [--rounds 3]
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

from studio.core.data import load_dataset
from studio.core.resources import resource

MODEL = resource("demo", "digits_cnn.onnx")


def studio_bench_p50(project: Path) -> float:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "studio",
            "bench",
            str(MODEL),
            "--project",
            str(project),
            "--data",
            "digits",
            "--threads",
            "1",
            "--batch",
            "1",
            "--min-runs",
            "1000",
            "--min-seconds",
            "3",
            "--json",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)["latency_ms"]["p50"]


def plain_loop_p50(runs: int = 3000) -> float:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(MODEL), options, providers=["CPUExecutionProvider"])
    x = load_dataset("digits").split("validation").arrays["x"][:1].astype(np.float32)
    feeds = {"input": x}
    for _ in range(50):
        session.run(None, feeds)
    durations = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        session.run(None, feeds)
        durations.append(time.perf_counter_ns() - t0)
    return statistics.median(durations) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternate the two measurements this often")
    args = parser.parse_args()
    os.environ.setdefault("STUDIO_DATA_DIR", tempfile.mkdtemp(prefix="studio-bench-"))
    studio_p50, plain_p50 = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            studio_p50.append(studio_bench_p50(Path(tmp) / "project"))
            plain_p50.append(plain_loop_p50())
    s, p = statistics.median(studio_p50), statistics.median(plain_p50)
    print(f"model: {MODEL.name}, CPU, batch 1, 1 thread, {args.rounds} alternating rounds")
    print(
        f"studio bench p50 (median of rounds): {s:.4f} ms   rounds: {', '.join(f'{v:.4f}' for v in studio_p50)}"
    )
    print(
        f"plain onnxruntime loop p50:          {p:.4f} ms   rounds: {', '.join(f'{v:.4f}' for v in plain_p50)}"
    )
    print(f"ratio studio / plain: {s / p:.3f}  (goal: within 0.95–1.05)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
