"""Does distillation give a much smaller digits model at nearly the teacher's accuracy?

In one run, on the shipped digits CNN:

1. PyTorch teacher (digits_cnn.py + safetensors) -> a width-reduced copy of itself (student=width),
   target: at most 25 % of the teacher's parameters and at least 98 % of its top-1.
2. ONNX teacher (digits_cnn.onnx) -> a student named by student_ref: the architecture the first
   step saved (a .py with its structure and weights), started from fresh weights, so everything
   it knows comes from the ONNX teacher. Same targets.

The steps see only the train split of the digits sample (they choose their best epoch on a part
of it); top-1 is the studio's own measurement (ONNX Runtime, CPU, batch 1, one thread; the
PyTorch models converted to ONNX for it) on the validation split, which no step saw. Latency is
timed in rounds in one process, the order of the four models rotating every round; each
student's speed-up is the median of its per-round ratios to its teacher.

    python tests/benchmarks/bench_distillation.py [--width 0.45] [--epochs 6] [--rounds 12] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from measuring import (
    DIGITS,
    Step,
    digits_onnx,
    digits_torch,
    measure_once,
    paired_latency,
    run_step,
    step_dataset,
)
from targets import Paired, Report, add_arguments, settle_defaults

from studio.core.trust import grant

TARGET_PARAMS = 0.25  # student parameters / teacher parameters, at most
TARGET_ACCURACY = 0.98  # student top-1 / teacher top-1, at least


def judge(
    report: Report, title: str, name: str, student: dict, teacher: dict, step: Step, speed: Paired
) -> None:
    details = step.details
    params = student["params"] / teacher["params"]
    accuracy = student["accuracy"]["top1"] / teacher["accuracy"]["top1"]
    print(
        f"\n{title} ({len(details['epochs']) - 1} epochs, best {details['best_epoch']}, {step.seconds:.0f} s):"
    )
    print(f"  student from {details['student']['source']} ({details['student']['init']} weights)")
    report.check(
        f"{name}: params, student/teacher",
        f"{student['params']:,} / {teacher['params']:,} = {params:.1%}",
        f"<= {TARGET_PARAMS:.0%}",
        params <= TARGET_PARAMS,
    )
    report.check(
        f"{name}: top-1, student/teacher",
        f"{student['accuracy']['top1']:.2%} / {teacher['accuracy']['top1']:.2%} = {accuracy:.1%}",
        f">= {TARGET_ACCURACY:.0%}",
        accuracy >= TARGET_ACCURACY,
        samples=student["samples"],
    )
    print(f"  MACs       {details['mac_ratio']:.1%} of the teacher's")
    print(f"  latency: {speed.describe('teacher', 'student')}")
    report.figure(f"{name}: latency, teacher/student", speed.ratio_text(), rounds=speed.rounds)
    curve = ", ".join(f"{e['val_accuracy']:.2%}" for e in details["epochs"])
    print(f"  top-1 per epoch on the step's own validation part (0: before training): {curve}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=0.45, help="channels the width student keeps")
    parser.add_argument("--epochs", type=int, help="epochs of the width student (6)")
    parser.add_argument(
        "--onnx-epochs", type=int, help="epochs of the fresh student of the ONNX teacher (12)"
    )
    parser.add_argument("--threads", type=int, default=2, help="threads for training")
    parser.add_argument("--rounds", type=int, help="latency rounds, every model once per round (12)")
    parser.add_argument("--seconds", type=float, help="seconds each model is timed per round (0.5)")
    add_arguments(parser)
    args = settle_defaults(
        parser.parse_args(),
        {"epochs": 6, "onnx_epochs": 12, "rounds": 12, "seconds": 0.5},
        {"epochs": 3, "onnx_epochs": 6, "rounds": 5, "seconds": 0.3},
    )
    os.environ.setdefault("STUDIO_DATA_DIR", tempfile.mkdtemp(prefix="studio-bench-"))  # trust decisions

    with (
        Report.from_args("distillation", args) as report,
        tempfile.TemporaryDirectory(prefix="bench-distillation-") as tmp,
    ):
        data = step_dataset(DIGITS, Path(tmp) / "data")
        width = run_step(
            "distill",
            digits_torch(),
            data,
            Path(tmp) / "width",
            params={"width": args.width, "epochs": args.epochs},
            threads=args.threads,
        )
        grant(width.files)  # the user trusts the architecture file the student is built from
        params = {
            "student": "version",
            "student_ref": str(width.files.main),
            "student_init": "random",
            "epochs": args.onnx_epochs,
        }
        fresh = run_step(
            "distill", digits_onnx(), data, Path(tmp) / "from_onnx", params=params, threads=args.threads
        )
        models = {
            "teacher (torch)": digits_torch(),
            "teacher (onnx)": digits_onnx(),
            "width student": width.files,
            "onnx student": fresh.files,
        }
        measured = {name: measure_once(files, DIGITS) for name, files in models.items()}
        p50 = paired_latency(models, DIGITS, args.rounds, args.seconds)

        print(f"{'model':<18}{'top-1':>9}{'p50 ms':>10}{'params':>10}{'size B':>11}")
        for name, m in measured.items():
            print(
                f"{name:<18}{m['accuracy']['top1']:>9.2%}{statistics.median(p50[name]):>10.3f}"
                f"{m['params']:>10,}{m['size_bytes']:>11,}"
            )
        print(data.line(measured["teacher (torch)"]["samples"]))
        teacher = measured["teacher (torch)"]
        judge(
            report,
            "distill student=width",
            "width student",
            measured["width student"],
            teacher,
            width,
            Paired(p50["teacher (torch)"], p50["width student"]),
        )
        judge(
            report,
            "distill from the ONNX teacher, student_ref, fresh weights",
            "fresh student of ONNX",
            measured["onnx student"],
            {**measured["teacher (onnx)"], "params": teacher["params"]},
            fresh,
            Paired(p50["teacher (onnx)"], p50["onnx student"]),
        )
        print(
            f"\nONNX teacher's parameters as ONNX counts them (batch norm folded): "
            f"{measured['teacher (onnx)']['params']:,}"
        )
        return report.summary()


if __name__ == "__main__":
    sys.exit(main())
