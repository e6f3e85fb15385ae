"""What the model benchmarks (pruning, distillation, quantization) share.

* :func:`step_dataset`: the part of a dataset a technique step may see. Every measurement scores
  on the validation split of the whole dataset (seed 0, 20 %, as the studio's measurements do);
  the step gets only the rest, as a dataset file of its own, so that accuracy and fidelity are
  judged on samples the step never saw, neither to train or calibrate on nor to pick an epoch or
  a candidate with (for that, the step splits its own part again).
* :func:`measure_once`: the studio's own measurement of one version (accuracy, fidelity, size,
  parameters), in a fresh process.
* :func:`plain_session`: an ONNX Runtime session with nothing of the studio's code, for the
  scripts that re-measure the studio's figures independently.
* :func:`paired_latency`: the p50 latency of several versions timed in the same rounds, in one
  fresh process, with the order rotating every round, so that they can be compared round by
  round (ONNX Runtime, CPU, batch 1, one thread, the first validation sample, as the studio's
  measurement times them).
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from targets import Stopwatch

from studio.core.benchmark import BenchmarkSettings, MeasurementRequest, ModelRef, measure
from studio.core.data import DatasetSpec
from studio.core.models import ModelFiles, collect_files
from studio.core.resources import resource
from studio.core.techniques import run_local

DIGITS = DatasetSpec(source="digits")
# Accuracy, fidelity and size only: latency comes from paired_latency.
SCORING = BenchmarkSettings(runtime="onnxruntime", batch=1, threads=1, warmup=1, min_runs=1, min_seconds=0)


def digits_torch() -> ModelFiles:
    """The shipped digits CNN as PyTorch: architecture file and safetensors weights."""
    return collect_files(
        resource("demo", "digits_cnn.py"), weights=resource("demo", "digits_cnn.safetensors")
    )


def digits_onnx() -> ModelFiles:
    return collect_files(resource("demo", "digits_cnn.onnx"))


@dataclass(frozen=True)
class StepData:
    """The dataset a step gets, how many samples it holds, and how many are held out from it."""

    spec: DatasetSpec
    seen: int
    held_out: int

    def line(self, scored: int) -> str:
        return (
            f"accuracy and fidelity on {scored} held-out validation samples; "
            f"the steps saw the other {self.seen} only"
        )


def step_dataset(data: DatasetSpec, folder: Path) -> StepData:
    """The train split of ``data`` as a dataset file of its own."""
    whole = data.load()
    train, held_out = whole.split("train"), whole.split("validation")
    arrays = dict(train.arrays)
    if train.labels is not None:
        arrays["y"] = train.labels
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{whole.name}-step-part.npz"
    np.savez(path, **arrays)
    return StepData(DatasetSpec(source=str(path)), len(train), len(held_out))


@dataclass
class Step:
    files: ModelFiles
    details: dict
    notes: list[str]
    seconds: float


def run_step(
    technique: str,
    model: ModelFiles | Path,
    data: StepData,
    out: Path,
    *,
    params: dict | None = None,
    threads: int | None = 2,
) -> Step:
    """One technique step, here, on the step's part of a dataset."""
    with Stopwatch() as watch:
        result = run_local(
            technique, model, params=params, dataset=data.spec, output_dir=out, trusted=True, threads=threads
        )
    return Step(collect_files(result.output.main), result.details, list(result.notes), watch.seconds)


def measure_once(files: ModelFiles, data: DatasetSpec, reference: ModelFiles | None = None) -> dict:
    """The studio's measurement of one version on the validation split of ``data``."""
    request = MeasurementRequest(
        model=ModelRef.of(files, trusted=True),
        dataset=data,
        reference=None if reference is None else ModelRef.of(reference, trusted=True),
        settings=SCORING,
    )
    return measure(request)


def paired_latency(
    models: dict[str, ModelFiles], data: DatasetSpec, rounds: int, seconds: float
) -> dict[str, list[float]]:
    """Each model's p50 latency in ms, one figure per round, all timed in the same rounds."""
    refs = {name: ModelRef.of(files, trusted=True).model_dump(mode="json") for name, files in models.items()}
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
        return child.submit(_time_in_rounds, refs, data.model_dump(mode="json"), rounds, seconds).result()


def _time_in_rounds(refs: dict[str, dict], data: dict, rounds: int, seconds: float) -> dict[str, list[float]]:
    from studio.core.benchmark import time_runner
    from studio.core.data import bind
    from studio.core.runtime import open_runner

    validation = DatasetSpec.model_validate(data).load().split("validation")
    settings = BenchmarkSettings(runtime="onnxruntime", batch=1, threads=1, min_runs=20, min_seconds=seconds)
    runners = {}
    try:
        for name, ref in refs.items():
            files = ModelRef.model_validate(ref).files()
            runners[name] = open_runner(files, runtime="onnxruntime", threads=1, trusted=True)
        feeds = {
            name: {k: np.ascontiguousarray(v[:1]) for k, v in bind(validation, runner.inputs).items()}
            for name, runner in runners.items()
        }
        names = list(runners)
        p50: dict[str, list[float]] = {name: [] for name in names}
        for i in range(rounds):
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:
                p50[name].append(time_runner(runners[name], feeds[name], settings).p50)
        return p50
    finally:
        for runner in runners.values():
            runner.close()


def plain_session(path: Path) -> ort.InferenceSession:
    """ONNX Runtime on the CPU, 1 thread, sequential, every graph optimization, quiet."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
