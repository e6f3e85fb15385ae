"""Does pruning pay on the demo digits CNN? Structured pruning must make it faster and smaller at
the same accuracy; magnitude pruning shows what unstructured sparsity does (and does not) give.

In one run: the baseline (architecture + safetensors), prune.structured at half the channels with
its default fine-tuning, and prune.magnitude at 50 %, each measured by the studio's own
measurement (ONNX Runtime, CPU, batch 1, one thread, digits validation split). Targets for
prune.structured: latency at least 1.8× lower, multiply-adds at least 3× fewer, top-1 within one
point of the baseline.

    python tests/benchmarks/bench_pruning.py [--rounds 3]

Latency on a shared 2-core machine is noisy: ``--rounds`` measures the models in turn this many
times and keeps each one's median.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from studio.core.benchmark import BenchmarkSettings, MeasurementRequest, ModelRef, measure
from studio.core.data import DatasetSpec
from studio.core.graph import inspect_model
from studio.core.models import ModelFiles, collect_files
from studio.core.resources import resource
from studio.core.techniques import run_local

TARGET_SPEEDUP = 1.8
TARGET_MACS = 3.0
TARGET_ACCURACY_DROP = 0.01
DATA = DatasetSpec(source="digits")


def baseline_files() -> ModelFiles:
    return collect_files(
        resource("demo", "digits_cnn.py"), weights=resource("demo", "digits_cnn.safetensors")
    )


def run_technique(name: str, params: dict, out: Path) -> tuple[ModelFiles, dict, float]:
    start = time.perf_counter()
    result = run_local(
        name, baseline_files(), params=params, dataset=DATA, output_dir=out, trusted=True, threads=2
    )
    return collect_files(result.output.main), result.details, time.perf_counter() - start


def measure_once(files: ModelFiles) -> dict:
    settings = BenchmarkSettings(runtime="onnxruntime", batch=1, threads=1, min_seconds=2)
    return measure(
        MeasurementRequest(model=ModelRef.of(files, trusted=True), dataset=DATA, settings=settings)
    )


def measure_all(models: dict[str, ModelFiles], rounds: int) -> dict[str, dict]:
    """Each model's measurement, its p50 replaced by the median p50 over the rounds."""
    results: dict[str, list[dict]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, files in models.items():
            results[name].append(measure_once(files))
    summary = {}
    for name, runs in results.items():
        summary[name] = {**runs[0], "p50": statistics.median(r["latency_ms"]["p50"] for r in runs)}
        summary[name]["p50_runs"] = [round(r["latency_ms"]["p50"], 4) for r in runs]
    return summary


def macs_of(files: ModelFiles) -> int:
    return inspect_model(files, trusted=True).macs


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="measure every model this many times, in turn")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-pruning-") as tmp:
        structured, s_details, s_seconds = run_technique(
            "prune.structured", {"ratio": 0.5}, Path(tmp) / "structured"
        )
        magnitude, m_details, m_seconds = run_technique(
            "prune.magnitude", {"sparsity": 0.5}, Path(tmp) / "magnitude"
        )
        models = {"baseline": baseline_files(), "structured": structured, "magnitude": magnitude}
        measured = measure_all(models, args.rounds)
        macs = {name: macs_of(files) for name, files in models.items()}

    base = measured["baseline"]
    print(
        f"{'model':<12}{'top-1':>9}{'p50 ms':>10}{'p50 runs (ms)':>28}{'MACs':>14}{'params':>10}{'size B':>10}"
    )
    for name, m in measured.items():
        top1 = m["accuracy"]["top1"] if m["accuracy"] else float("nan")
        runs = ", ".join(f"{v:.3f}" for v in m["p50_runs"])
        print(
            f"{name:<12}{top1:>9.2%}{m['p50']:>10.3f}{runs:>28}{macs[name]:>14,}{m['params']:>10,}{m['size_bytes']:>10,}"
        )

    speedup = base["p50"] / measured["structured"]["p50"]
    mac_ratio = macs["baseline"] / macs["structured"]
    drop = base["accuracy"]["top1"] - measured["structured"]["accuracy"]["top1"]
    print(
        f"\nprune.structured ratio 0.5 (+{len(s_details['finetune'])} epochs fine-tuning, {s_seconds:.0f} s):"
    )
    print(
        f"  latency    {speedup:.2f}x lower   (target >= {TARGET_SPEEDUP}x)  {verdict(speedup >= TARGET_SPEEDUP)}"
    )
    print(
        f"  MACs       {mac_ratio:.2f}x fewer   (target >= {TARGET_MACS}x)  {verdict(mac_ratio >= TARGET_MACS)}"
    )
    print(
        f"  accuracy   {drop * 100:+.2f} points drop (target <= {TARGET_ACCURACY_DROP * 100:.0f})  "
        f"{verdict(drop <= TARGET_ACCURACY_DROP)}"
    )
    print(f"  params     {s_details['params_before']:,} -> {s_details['params_after']:,}")

    m = measured["magnitude"]
    zipped = m_details["zipped_bytes_before"] / m_details["zipped_bytes_after"]
    print(f"\nprune.magnitude sparsity 0.5 ({m_seconds:.0f} s):")
    print(f"  sparsity reached   {m_details['sparsity']:.1%} of conv/linear weights")
    print(f"  latency ratio      {base['p50'] / m['p50']:.2f}x (dense runtime: expected ~1.0)")
    print(f"  file size ratio    {base['size_bytes'] / m['size_bytes']:.2f}x (unzipped)")
    print(
        f"  zipped size ratio  {zipped:.2f}x smaller ({m_details['zipped_bytes_before']:,} -> {m_details['zipped_bytes_after']:,} B)"
    )
    print(f"  top-1              {m['accuracy']['top1']:.2%}")
    ok = speedup >= TARGET_SPEEDUP and mac_ratio >= TARGET_MACS and drop <= TARGET_ACCURACY_DROP
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
