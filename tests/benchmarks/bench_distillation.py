"""Does distillation give a much smaller digits model at nearly the teacher's accuracy?

In one run, on the shipped digits CNN (99.44 % top-1 on the validation split):

1. PyTorch teacher (digits_cnn.py + safetensors) -> a width-reduced copy of itself (student=width),
   target: at most 25 % of the teacher's parameters and at least 98 % of its top-1.
2. ONNX teacher (digits_cnn.onnx) -> a student named by student_ref: the architecture the first
   step saved (a .py with its structure and weights), started from fresh weights, so everything
   it knows comes from the ONNX teacher.

Teacher and students are measured by the studio's own measurement (ONNX Runtime, CPU, batch 1,
one thread, digits validation split); the PyTorch models are converted to ONNX for it.

    python tests/benchmarks/bench_distillation.py [--width 0.45] [--epochs 6] [--rounds 1]

Latency on a shared 2-core machine is noisy: ``--rounds`` measures the models in turn this many
times and keeps each one's median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from studio.core.benchmark import BenchmarkSettings, MeasurementRequest, ModelRef, measure
from studio.core.data import DatasetSpec
from studio.core.models import ModelFiles, collect_files
from studio.core.resources import resource
from studio.core.techniques import run_local
from studio.core.trust import grant

TARGET_PARAMS = 0.25  # student parameters / teacher parameters, at most
TARGET_ACCURACY = 0.98  # student top-1 / teacher top-1, at least
DATA = DatasetSpec(source="digits")


def teacher_files() -> ModelFiles:
    return collect_files(
        resource("demo", "digits_cnn.py"), weights=resource("demo", "digits_cnn.safetensors")
    )


def distill(
    model: ModelFiles | Path, params: dict, out: Path, threads: int
) -> tuple[ModelFiles, dict, float]:
    start = time.perf_counter()
    result = run_local(
        "distill", model, params=params, dataset=DATA, output_dir=out, trusted=True, threads=threads
    )
    return collect_files(result.output.main), result.details, time.perf_counter() - start


def measure_all(models: dict[str, ModelFiles], rounds: int) -> dict[str, dict]:
    """Each model's measurement, its p50 replaced by the median p50 over the rounds."""
    settings = BenchmarkSettings(runtime="onnxruntime", batch=1, threads=1, min_seconds=2)
    runs: dict[str, list[dict]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, files in models.items():
            request = MeasurementRequest(
                model=ModelRef.of(files, trusted=True), dataset=DATA, settings=settings
            )
            runs[name].append(measure(request))
    return {
        name: {
            **found[0],
            "p50": statistics.median(r["latency_ms"]["p50"] for r in found),
            "p50_runs": [r["latency_ms"]["p50"] for r in found],
        }
        for name, found in runs.items()
    }


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(name: str, student: dict, teacher: dict, details: dict, seconds: float) -> bool:
    params = student["params"] / teacher["params"]
    accuracy = student["accuracy"]["top1"] / teacher["accuracy"]["top1"]
    print(f"\n{name} ({len(details['epochs']) - 1} epochs, best {details['best_epoch']}, {seconds:.0f} s):")
    print(f"  student from {details['student']['source']} ({details['student']['init']} weights)")
    print(
        f"  params     {student['params']:,} / {teacher['params']:,} = {params:.1%}   "
        f"(target <= {TARGET_PARAMS:.0%})  {verdict(params <= TARGET_PARAMS)}"
    )
    print(
        f"  top-1      {student['accuracy']['top1']:.2%} vs {teacher['accuracy']['top1']:.2%} = "
        f"{accuracy:.1%} of the teacher (target >= {TARGET_ACCURACY:.0%})  {verdict(accuracy >= TARGET_ACCURACY)}"
    )
    print(f"  MACs       {details['mac_ratio']:.1%} of the teacher's")
    print(
        f"  latency    {teacher['p50'] / student['p50']:.2f}x lower ({student['p50']:.3f} ms vs {teacher['p50']:.3f} ms)"
    )
    curve = ", ".join(f"{e['val_accuracy']:.2%}" for e in details["epochs"])
    print(f"  validation top-1 per epoch (0: before training): {curve}")
    return params <= TARGET_PARAMS and accuracy >= TARGET_ACCURACY


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=0.45, help="channels the width student keeps")
    parser.add_argument("--epochs", type=int, default=6, help="epochs of the width student")
    parser.add_argument(
        "--onnx-epochs", type=int, default=12, help="epochs of the fresh student of the ONNX teacher"
    )
    parser.add_argument("--threads", type=int, default=2, help="threads for training")
    parser.add_argument("--rounds", type=int, default=1, help="measure every model this many times, in turn")
    args = parser.parse_args()
    os.environ.setdefault("STUDIO_DATA_DIR", tempfile.mkdtemp(prefix="studio-bench-"))  # trust decisions

    with tempfile.TemporaryDirectory(prefix="bench-distillation-") as tmp:
        width, w_details, w_seconds = distill(
            teacher_files(), {"width": args.width, "epochs": args.epochs}, Path(tmp) / "width", args.threads
        )
        grant(width)  # the user trusts the architecture file the student is built from
        params = {
            "student": "version",
            "student_ref": str(width.main),
            "student_init": "random",
            "epochs": args.onnx_epochs,
        }
        onnx_teacher = resource("demo", "digits_cnn.onnx")
        fresh, f_details, f_seconds = distill(onnx_teacher, params, Path(tmp) / "from_onnx", args.threads)
        models = {
            "teacher (torch)": teacher_files(),
            "teacher (onnx)": collect_files(onnx_teacher),
            "width student": width,
            "onnx student": fresh,
        }
        measured = measure_all(models, args.rounds)

    print(f"{'model':<18}{'top-1':>9}{'p50 ms':>10}{'p50 runs (ms)':>26}{'params':>10}{'size B':>11}")
    for name, m in measured.items():
        runs = ", ".join(f"{v:.3f}" for v in m["p50_runs"])
        print(
            f"{name:<18}{m['accuracy']['top1']:>9.2%}{m['p50']:>10.3f}{runs:>26}{m['params']:>10,}{m['size_bytes']:>11,}"
        )
    teacher = measured["teacher (torch)"]
    ok = report("distill student=width", measured["width student"], teacher, w_details, w_seconds)
    onnx_ok = report(
        "distill from the ONNX teacher, student_ref, fresh weights",
        measured["onnx student"],
        {**measured["teacher (onnx)"], "params": teacher["params"]},
        f_details,
        f_seconds,
    )
    print(
        f"\nONNX teacher's parameters as ONNX counts them (batch norm folded): {measured['teacher (onnx)']['params']:,}"
    )
    return 0 if ok and onnx_ok else 1


if __name__ == "__main__":
    sys.exit(main())
