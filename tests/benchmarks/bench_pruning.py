"""Does pruning pay on the demo digits CNN? Structured pruning must make it faster and smaller at
the same accuracy; magnitude pruning shows what unstructured sparsity does (and does not) give.

In one run: the baseline (architecture + safetensors), prune.structured at half the channels with
its default fine-tuning, and prune.magnitude at 50 %. Targets for prune.structured: latency at
least 1.8× lower, multiply-adds at least 3× fewer, top-1 within one point of the baseline.

The steps see only the train split of the digits sample; top-1 is the studio's own measurement
on the validation split, which no step saw. Latency (ONNX Runtime, CPU, batch 1, one thread) is
timed in rounds in one process, the order of the three models rotating every round; the speed-up
is the median of the per-round ratios, printed with its interquartile range.

    python tests/benchmarks/bench_pruning.py [--rounds 12] [--seconds 0.5] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from measuring import DIGITS, digits_torch, measure_once, paired_latency, run_step, step_dataset
from targets import Paired, Report, add_arguments, settle_defaults

from studio.core.graph import inspect_model
from studio.core.models import ModelFiles

TARGET_SPEEDUP = 1.8
TARGET_MACS = 3.0
TARGET_ACCURACY_DROP = 0.01


def macs_of(files: ModelFiles) -> int:
    return inspect_model(files, trusted=True).macs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, help="latency rounds, every model once per round (12)")
    parser.add_argument("--seconds", type=float, help="seconds each model is timed per round (0.5)")
    add_arguments(parser)
    args = settle_defaults(parser.parse_args(), {"rounds": 12, "seconds": 0.5}, {"rounds": 5, "seconds": 0.3})

    with (
        Report.from_args("pruning", args) as report,
        tempfile.TemporaryDirectory(prefix="bench-pruning-") as tmp,
    ):
        data = step_dataset(DIGITS, Path(tmp) / "data")
        baseline = digits_torch()
        structured = run_step(
            "prune.structured", baseline, data, Path(tmp) / "structured", params={"ratio": 0.5}
        )
        magnitude = run_step(
            "prune.magnitude", baseline, data, Path(tmp) / "magnitude", params={"sparsity": 0.5}
        )
        models = {"baseline": baseline, "structured": structured.files, "magnitude": magnitude.files}
        measured = {name: measure_once(files, DIGITS) for name, files in models.items()}
        macs = {name: macs_of(files) for name, files in models.items()}
        p50 = paired_latency(models, DIGITS, args.rounds, args.seconds)

        print(f"{'model':<12}{'top-1':>9}{'p50 ms':>10}{'MACs':>14}{'params':>10}{'size B':>10}")
        for name, m in measured.items():
            top1 = m["accuracy"]["top1"] if m["accuracy"] else float("nan")
            print(
                f"{name:<12}{top1:>9.2%}{statistics.median(p50[name]):>10.3f}{macs[name]:>14,}{m['params']:>10,}{m['size_bytes']:>10,}"
            )
        print(data.line(measured["baseline"]["samples"]))

        base = measured["baseline"]
        speed = Paired(p50["baseline"], p50["structured"])
        mac_ratio = macs["baseline"] / macs["structured"]
        drop = base["accuracy"]["top1"] - measured["structured"]["accuracy"]["top1"]
        details = structured.details
        print(
            f"\nprune.structured ratio 0.5 (+{len(details['finetune'])} epochs fine-tuning, {structured.seconds:.0f} s):"
        )
        print(f"  latency: {speed.describe('baseline', 'pruned')}")
        report.check(
            "structured 0.5: latency, baseline/pruned",
            speed.ratio_text(),
            f">= {TARGET_SPEEDUP}x",
            speed.ratio >= TARGET_SPEEDUP,
            rounds=speed.rounds,
        )
        report.check(
            "structured 0.5: MACs, baseline/pruned",
            f"{mac_ratio:.2f}x",
            f">= {TARGET_MACS:g}x",
            mac_ratio >= TARGET_MACS,
        )
        report.check(
            "structured 0.5: top-1 drop (points)",
            f"{drop * 100:+.2f} ({base['accuracy']['top1']:.2%} -> "
            f"{measured['structured']['accuracy']['top1']:.2%})",
            f"<= {TARGET_ACCURACY_DROP * 100:.0f}",
            drop <= TARGET_ACCURACY_DROP,
            samples=measured["structured"]["samples"],
        )
        print(f"  params     {details['params_before']:,} -> {details['params_after']:,}")

        m, m_details = measured["magnitude"], magnitude.details
        zipped = m_details["zipped_bytes_before"] / m_details["zipped_bytes_after"]
        dense = Paired(p50["baseline"], p50["magnitude"])
        print(f"\nprune.magnitude sparsity 0.5 ({magnitude.seconds:.0f} s):")
        print(f"  sparsity reached   {m_details['sparsity']:.1%} of conv/linear weights")
        print(f"  latency: {dense.describe('baseline', 'sparse')}")
        report.figure("magnitude 50 %: latency, baseline/sparse", dense.ratio_text(), rounds=dense.rounds)
        print(f"  file size ratio    {base['size_bytes'] / m['size_bytes']:.2f}x (unzipped)")
        print(
            f"  zipped size ratio  {zipped:.2f}x smaller ({m_details['zipped_bytes_before']:,} -> "
            f"{m_details['zipped_bytes_after']:,} B)"
        )
        report.figure("magnitude 50 %: top-1", f"{m['accuracy']['top1']:.2%}", samples=m["samples"])
        return report.summary()


if __name__ == "__main__":
    sys.exit(main())
