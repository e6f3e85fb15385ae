"""Latency, throughput and the full measurement of one model version.

A measurement runs in a fresh process (`measure`), so that whatever else the caller is doing,
its threads, allocations and imported libraries do not leak into the figures. Every version of
a model is timed on the same fixed batch (the first samples of the validation split) and scored
on the same validation samples, so that their numbers can be compared row by row. Against a
reference, the two are timed together in alternating rounds (studio.core.timing): a speed-up
comes from one job, never from two timings taken apart.
"""

from __future__ import annotations

import logging
import multiprocessing
import re
import signal
import sys
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from studio.api import StudioError
from studio.core.data import Dataset, DatasetSpec, bind
from studio.core.evaluate import accuracy, fidelity, fixed_batch, predict
from studio.core.hardware import cpu_mhz, environment, logical_cores, physical_cores
from studio.core.models import ModelFiles, ModelFormat, TensorSpec
from studio.core.timing import (
    CpuSample,
    PairedTiming,
    gc_paused,
    machine_load,
    median_ci,
    noise,
    time_paired,
)

if TYPE_CHECKING:
    from studio.core.runtime import Runner

log = logging.getLogger(__name__)

_DEVICE = re.compile(r"cpu|cuda(:\d+)?")
EVAL_BATCH = 64
RANDOM_FIDELITY_SAMPLES = 32  # fidelity without a dataset: this many seeded random samples


@dataclass
class BenchmarkSettings:
    """How to time a model. ``threads=None`` means one per physical core."""

    runtime: str = "onnxruntime"
    device: str = "cpu"
    batch: int = 1
    threads: int | None = None
    warmup: int = 10
    min_runs: int = 50
    min_seconds: float = 1.0
    max_seconds: float = 60.0
    layers: bool = False  # also time every node, in a profiled run of its own (studio.core.layer_times)
    provider: str | None = None  # ONNX Runtime's provider (studio.core.runtime.PROVIDERS); None: the device's
    torch_mode: str = "eager"  # the torch runtime's mode: eager, compile, cuda-graphs (runtime.TORCH_MODES)
    sweep: str | None = None  # the batch sweep this measurement is one step of (studio.core.sweep)

    def validate(self) -> BenchmarkSettings:
        """Refuse impossible settings before any process is started or any model opened."""
        checks = [
            (self.batch >= 1, "batch must be at least 1"),
            (self.threads is None or self.threads >= 1, "threads must be at least 1"),
            (self.warmup >= 0, "warm-up runs cannot be negative"),
            (self.min_runs >= 1, "the minimum number of runs must be at least 1"),
            (self.min_seconds >= 0, "the minimum time cannot be negative"),
            (self.max_seconds > 0, "the maximum time must be more than 0 seconds"),
            (
                self.max_seconds >= self.min_seconds,
                "the maximum time cannot be shorter than the minimum time",
            ),
            (bool(self.runtime), "a runtime must be named"),
            (
                _DEVICE.fullmatch(self.device) is not None,
                f"unknown device '{self.device}'; use cpu or cuda:N",
            ),
            (
                self.torch_mode == "eager" or self.runtime == "torch",
                "torch.compile is torch's: use --runtime torch with --torch-mode",
            ),
            (
                self.provider is None or self.runtime == "onnxruntime",
                "a provider is ONNX Runtime's: leave out --provider with --runtime torch",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise StudioError(message)
        if self.provider is not None:
            from studio.core.runtime import provider_name

            self.provider = provider_name(self.provider, self.device)  # one spelling: ONNX Runtime's
        return self


@dataclass(frozen=True)
class LatencyStats:
    """Per-run latency in milliseconds; one run is one batch of ``batch`` samples."""

    p50: float
    p90: float
    p99: float
    mean: float
    std: float
    min: float
    max: float
    runs: int
    batch: int = 1
    p50_ci95: tuple[float, float] | None = None  # where the median lies, 95 % of the time

    @classmethod
    def from_durations(cls, durations_ns: list[int], batch: int = 1) -> LatencyStats:
        if not durations_ns:
            raise StudioError("no timed runs to summarise")
        ms = np.asarray(durations_ns, dtype=np.float64) / 1e6
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        return cls(
            p50_ci95=median_ci(ms),
            p50=float(p50),
            p90=float(p90),
            p99=float(p99),
            mean=float(ms.mean()),
            std=float(ms.std()),
            min=float(ms.min()),
            max=float(ms.max()),
            runs=len(ms),
            batch=batch,
        )

    @property
    def throughput_per_s(self) -> float:
        return self.batch * 1000.0 / self.mean if self.mean > 0 else float("inf")

    def latency_ms(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if k not in ("runs", "batch", "p50_ci95")}


def time_runner(
    runner: Runner,
    feeds: dict[str, np.ndarray],
    settings: BenchmarkSettings,
    *,
    around: AbstractContextManager | None = None,
) -> LatencyStats:
    """Warm up, then run until both ``min_runs`` and ``min_seconds`` are reached (or ``max_seconds``).

    The loop does nothing but call the runner and read the clock, and the garbage collector is
    paused, so the figures are the runtime's and not the studio's. ``around`` wraps the timed runs
    alone, not the warm-up (an energy meter's span: studio.core.energy).
    """
    settings.validate()
    run, clock = runner.run, time.perf_counter_ns
    for _ in range(settings.warmup):
        run(feeds)
    min_runs = settings.min_runs
    min_ns, max_ns = int(settings.min_seconds * 1e9), int(settings.max_seconds * 1e9)
    durations: list[int] = []
    append = durations.append
    with gc_paused(), around if around is not None else nullcontext():
        start = clock()
        while True:
            t0 = clock()
            run(feeds)
            t1 = clock()
            append(t1 - t0)
            elapsed = t1 - start
            if (elapsed >= min_ns and len(durations) >= min_runs) or elapsed >= max_ns:
                break
    return LatencyStats.from_durations(durations, settings.batch)


# What to measure -------------------------------------------------------------------------------


class ModelRef(BaseModel):
    """Enough to find a model's files again in another process, and how to open it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    main: str
    format: ModelFormat
    extra: tuple[str, ...] = ()
    weights: str | None = None
    trusted: bool = False
    input_shapes: tuple[tuple[int, ...], ...] | None = None  # one full shape per input, in order
    input_roles: dict[str, str] | None = None  # input name → batch, state or a value (core.input_roles)

    @classmethod
    def of(
        cls,
        files: ModelFiles,
        *,
        trusted: bool = False,
        input_shapes: Sequence[tuple[int, ...]] | None = None,
        input_roles: Mapping[str, str] | None = None,
    ) -> ModelRef:
        return cls(
            main=str(files.main),
            format=files.format,
            extra=tuple(str(p) for p in files.extra),
            weights=None if files.weights is None else str(files.weights),
            trusted=trusted,
            input_shapes=None if input_shapes is None else tuple(tuple(s) for s in input_shapes),
            input_roles=None if input_roles is None else dict(input_roles),
        )

    def files(self) -> ModelFiles:
        return ModelFiles(
            main=Path(self.main),
            format=self.format,
            extra=tuple(Path(p) for p in self.extra),
            weights=None if self.weights is None else Path(self.weights),
        )


class MeasurementRequest(BaseModel):
    """One measurement: a model version, optionally a dataset and a reference to compare with.

    The split (``seed``, ``validation_fraction``) is part of the request so that every version
    of a project is scored on the same samples.
    """

    model_config = ConfigDict(extra="forbid")

    model: ModelRef
    dataset: DatasetSpec | None = None
    reference: ModelRef | None = None
    settings: BenchmarkSettings = Field(default_factory=BenchmarkSettings)
    seed: int = 0
    validation_fraction: float = 0.2


# Running it in a separate process --------------------------------------------------------------


def measure(request: MeasurementRequest, *, timeout: float | None = None) -> dict:
    """`measure_here` in a fresh spawned process; its errors come back as the same StudioError."""
    request.settings.validate()
    ctx = multiprocessing.get_context("spawn")
    reader, writer = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_child_main, args=(request.model_dump(mode="json"), writer), name="studio-measure"
    )
    proc.start()
    writer.close()  # the child holds the only writer, so its death reads as end-of-file here
    try:
        message = _wait_for_result(proc, reader, timeout)
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        reader.close()
    return _unpack(message)


def _wait_for_result(
    proc: multiprocessing.process.BaseProcess, reader: Connection, timeout: float | None
) -> tuple:
    ready = wait([reader, proc.sentinel], timeout)
    if not ready:
        raise StudioError(f"the measurement took longer than {timeout:g} s and was stopped")
    if reader in ready or reader.poll(0):
        try:
            return reader.recv()
        except EOFError:
            pass
    proc.join()
    raise StudioError(f"the measurement process {_exit_reason(proc.exitcode)}")


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory?)" if -code == signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    return f"exited with code {code} before reporting a result"


def _child_main(data: dict, writer: Connection) -> None:
    try:
        message: tuple = ("ok", measure_here(MeasurementRequest.model_validate(data)))
    except StudioError as exc:
        message = ("error", type(exc).__module__, type(exc).__qualname__, str(exc))
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0][:300]
        message = ("crash", f"{type(exc).__name__}: {first_line}", traceback.format_exc())
    writer.send(message)
    writer.close()


def _unpack(message: tuple) -> dict:
    kind = message[0]
    if kind == "ok":
        return message[1]
    if kind == "error":
        _, module, qualname, text = message
        raise _error_class(module, qualname)(text)
    _, short, trace = message
    log.error("measurement failed in its process:\n%s", trace)
    raise StudioError(f"the measurement failed: {short}")


def _error_class(module: str, qualname: str) -> type[StudioError]:
    """The child's error class when this process knows it, else StudioError; never imports code."""
    found = getattr(sys.modules.get(module), qualname, None)
    if isinstance(found, type) and issubclass(found, StudioError):
        return found
    return StudioError


# Running it here -------------------------------------------------------------------------------


@dataclass
class _Scores:
    accuracy: dict | None = None
    fidelity: dict | None = None
    samples: int = 0
    inputs: dict[str, np.ndarray] = field(default_factory=dict)  # what fidelity compared on


def measure_here(request: MeasurementRequest) -> dict:
    """Accuracy, fidelity and latency of one model version in this process."""
    settings = request.settings.validate()
    threads = settings.threads or physical_cores()
    dataset = request.dataset.load() if request.dataset is not None else None
    validation = None
    if dataset is not None:
        validation = dataset.split(
            "validation", seed=request.seed, validation_fraction=request.validation_fraction
        )
    scores = _Scores()
    try:
        with _opened(
            request.model, settings.runtime, settings, threads, timed=True, placement=True
        ) as runner:
            _check_batch(runner, settings.batch)
            feeds = bind(validation, runner.inputs) if validation is not None else None
            shapes = request.model.input_shapes
            timing_feeds = (
                _first(feeds, settings.batch)
                if feeds
                else random_feeds(runner.inputs, settings.batch, input_shapes=shapes)
            )
            placement = _placement(runner, timing_feeds)
            outputs = _score(runner, feeds, validation, request, scores)
            stats, paired, load, figures = _timed(runner, timing_feeds, request, settings, threads)
            timing = _timing(stats, paired, load, threads)
            runtime, device, provider = runner.runtime, runner.device, _provider(runner)
            mode = getattr(runner, "mode_ran", None)
    except Exception as exc:
        oom = _out_of_memory(exc, settings)
        if oom is None:
            raise
        raise oom from None
    if settings.layers:
        timing["layers"] = _layer_times(request.model, settings, threads, timing_feeds)
    if request.reference is not None:
        scores.fidelity = _fidelity(request.reference, validation, scores, outputs, settings, threads)
    where = {"runtime": runtime, "device": device, "provider": provider}
    execution = {**figures, "placement": placement, "mode": mode, "sweep": settings.sweep}
    return {
        **_result(request, settings, threads, dataset, scores, stats, where),
        "timing": timing,
        "execution": {key: value for key, value in execution.items() if value is not None},
    }


def _timed(runner, feeds, request: MeasurementRequest, settings: BenchmarkSettings, threads: int):
    """Latency (alone, or paired with the reference), the machine's load, and the peak GPU memory
    and energy per inference of the model alone (studio.core.gpu_memory, studio.core.energy): over
    the timed runs, or, when those alternated with the reference's, over runs of its own after."""
    from studio.core.energy import meter_for
    from studio.core.gpu_memory import PeakMemory

    meter, memory = meter_for(runner.device), PeakMemory(runner.runtime, runner.device)

    def run() -> object:
        return runner.run(feeds)

    before = CpuSample.now()
    if request.reference is None:
        span = meter.span() if meter.available else None
        memory.start()
        stats, paired = time_runner(runner, feeds, settings, around=span), None
        peak = memory.stop()
        energy = _energy(meter, None if span is None else span.reading, stats.runs, settings.batch, run)
    else:
        stats, paired = _time_against(runner, feeds, request.reference, settings, threads)
        memory.start()
        run()  # the model alone: its peak without the reference's tensors
        energy = _energy(meter, None, 0, settings.batch, run)
        peak = memory.stop()
    load = {**machine_load(before, CpuSample.now(), logical_cores()), "cpu_mhz": cpu_mhz()}
    return stats, paired, load, {"energy": energy, "peak_memory": peak}


def _energy(meter, reading, runs: int, batch: int, run) -> dict:
    """Joules per inference (runs × batch) over the timed runs, or over a window of runs of their
    own when those were too short for the counter (or alternated with a reference's)."""
    from studio.core.energy import energy_of_runs

    if not meter.available:
        return {"missing": meter.reason}
    window = "the timed runs"
    if reading is None or reading.seconds < meter.min_seconds:
        with gc_paused():
            reading, runs = energy_of_runs(meter, run, meter.min_seconds)
        window = "runs of their own after the timing"
    if reading.joules is None:
        return {"missing": reading.missing}
    inferences = runs * batch
    return {
        "joules_per_inference": reading.joules / inferences,
        "source": meter.source,
        "joules": reading.joules,
        "seconds": reading.seconds,
        "inferences": inferences,
        "window": window,
    }


def _placement(runner, feeds: dict[str, np.ndarray]) -> dict | None:
    """Which provider ran each node, from one profiled run (ONNX Runtime only; see OnnxRunner)."""
    if getattr(runner, "runtime", None) != "onnxruntime":
        return None
    runner.run(feeds)
    return runner.node_placement()


OUT_OF_MEMORY = "out of memory"  # how a measurement that ran out of memory begins its sentence
_OOM_SIGNS = ("out of memory", "failed to allocate memory", "alloc_failed", "memoryallocation")


def _out_of_memory(exc: BaseException, settings: BenchmarkSettings) -> StudioError | None:
    """The one sentence for a run that did not fit in memory (a batch sweep stops on it), or None."""
    text = str(exc).lower()
    if not (isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError") and not any(
        sign in text for sign in _OOM_SIGNS
    ):
        return None
    from studio.core.runtime import ort_reason  # ONNX Runtime's message without its source locations

    return StudioError(f"{OUT_OF_MEMORY} at batch {settings.batch} on {settings.device}: {ort_reason(exc)}")


def _time_against(
    runner, feeds: dict[str, np.ndarray], reference: ModelRef, settings: BenchmarkSettings, threads: int
) -> tuple[LatencyStats, dict]:
    """The model and its reference timed in alternating rounds (studio.core.timing), on the same
    samples and runtime: the model's figures, and the speed-up with its interval."""
    # an ONNX reference cannot run on torch: it is timed on ONNX Runtime, and the record says so
    runtime = (
        "onnxruntime" if settings.runtime == "torch" and not reference.format.is_torch else settings.runtime
    )
    with _opened(reference, runtime, settings, threads, timed=True) as other:
        _check_batch(other, settings.batch)
        other_feeds = _rename(feeds, other.inputs)
        timed: PairedTiming = time_paired(
            lambda: runner.run(feeds),
            lambda: other.run(other_feeds),
            warmup=settings.warmup,
            min_seconds=settings.min_seconds,
            max_seconds=settings.max_seconds,
        )
    stats = LatencyStats.from_durations(timed.model_ns, settings.batch)
    reference_stats = LatencyStats.from_durations(timed.reference_ns, settings.batch)
    return stats, {
        **timed.to_dict(),
        "reference_latency_ms": reference_stats.latency_ms(),
        "reference_runs": reference_stats.runs,
        "reference_runtime": runtime,
    }


def _layer_times(ref: ModelRef, settings: BenchmarkSettings, threads: int, feeds: dict) -> list[dict]:
    """Each node's share of the time, from ONNX Runtime's profiler, after the headline figures."""
    from studio.core.layer_times import profile_layers
    from studio.core.runtime import open_runner

    if settings.runtime != "onnxruntime":
        raise StudioError("per-layer times come from ONNX Runtime's profiler: use --runtime onnxruntime")

    def open_profiled(prefix: Path):
        return open_runner(
            ref.files(),
            runtime="onnxruntime",
            device=settings.device,
            threads=threads,
            trusted=ref.trusted,
            input_shapes=ref.input_shapes,
            input_roles=ref.input_roles,
            profile_prefix=prefix,
            provider=settings.provider,
        )

    return profile_layers(open_profiled, feeds)


def _timing(stats: LatencyStats, paired: dict | None, load: dict, threads: int) -> dict:
    """How far the figures can be trusted: the median's interval, the machine's load, a flag."""
    return {
        "p50_ci95": None if stats.p50_ci95 is None else list(stats.p50_ci95),
        "load": load,
        "noise": noise(stats.p50, stats.p90, load, threads),
        "paired": paired,
    }


def _score(runner, feeds, validation: Dataset | None, request: MeasurementRequest, scores: _Scores):
    """The model's outputs on the evaluation samples, and accuracy where there are labels."""
    if feeds is None:
        if request.reference is None:
            return None
        n = fixed_batch(runner.inputs) or RANDOM_FIDELITY_SAMPLES
        feeds = random_feeds(runner.inputs, n, seed=1, input_shapes=request.model.input_shapes)
    elif validation.labels is None and request.reference is None:
        return None
    outputs = predict(runner, feeds, batch_size=EVAL_BATCH)
    scores.samples, scores.inputs = len(outputs), feeds
    if validation is not None and validation.labels is not None:
        scores.accuracy = accuracy(outputs, validation.labels)
    return outputs


def _fidelity(ref: ModelRef, validation, scores: _Scores, outputs, settings: BenchmarkSettings, threads: int):
    runtime = "torch" if ref.format.is_torch else "onnxruntime"
    with _opened(ref, runtime, settings, threads) as reference:
        if validation is not None:
            feeds = bind(validation, reference.inputs)
        else:
            feeds = _rename(scores.inputs, reference.inputs)
        return fidelity(outputs, predict(reference, feeds, batch_size=EVAL_BATCH))


def _result(request, settings, threads, dataset, scores, stats: LatencyStats, where: dict) -> dict:
    from studio.core.graph import inspect_model

    files = request.model.files()
    info = inspect_model(files, trusted=request.model.trusted, input_shapes=request.model.input_shapes)
    return {
        "accuracy": scores.accuracy,
        "fidelity": scores.fidelity,
        "latency_ms": stats.latency_ms(),
        "runs": stats.runs,
        "throughput_per_s": stats.throughput_per_s,
        "size_bytes": int(info.size_bytes),
        "params": int(info.params),
        **where,
        "batch": settings.batch,
        "threads": threads,
        "warmup": settings.warmup,
        "samples": scores.samples,
        "dataset": None if dataset is None else dataset.name,
        "dataset_fingerprint": None if dataset is None else dataset.fingerprint(),
        "dataset_samples": None if dataset is None else len(dataset),
        "split": None
        if dataset is None
        else {"part": "validation", "seed": request.seed, "validation_fraction": request.validation_fraction},
        "environment": environment(),
    }


@contextmanager
def _opened(
    ref: ModelRef,
    runtime: str,
    settings: BenchmarkSettings,
    threads: int,
    *,
    timed: bool = False,
    placement: bool = False,
) -> Iterator:
    """The model on the settings' device; one that is timed also with the provider or torch mode
    asked for, and the measured one (``placement``) recording where its nodes ran."""
    from studio.core.runtime import open_runner

    measured: dict = {}
    if timed and runtime == "onnxruntime":
        measured["provider"] = settings.provider
    elif timed and runtime == "torch":
        measured["torch_mode"] = settings.torch_mode
    runner = open_runner(
        ref.files(),
        runtime=runtime,
        device=settings.device,
        threads=threads,
        trusted=ref.trusted,
        input_shapes=ref.input_shapes,
        input_roles=ref.input_roles,
        placement=placement and runtime == "onnxruntime",
        **measured,
    )
    try:
        yield runner
    finally:
        runner.close()


def _provider(runner) -> str:
    provider = getattr(runner, "provider", None)
    if provider:
        return str(provider)
    if runner.runtime == "onnxruntime":
        return "CUDAExecutionProvider" if runner.device.startswith("cuda") else "CPUExecutionProvider"
    return runner.runtime


def _check_batch(runner, batch: int) -> None:
    fixed = fixed_batch(runner.inputs)
    if fixed is not None and fixed != batch and getattr(runner, "one_stream", False):
        raise StudioError(
            f"the model has a state input, which holds one stream: it runs one sample at a time, "
            f"so it cannot be timed at batch {batch}"
        )
    if fixed is not None and fixed != batch:
        raise StudioError(
            f"the model was exported for batches of exactly {fixed}, so it cannot be timed at batch {batch}"
        )


def _first(feeds: dict[str, np.ndarray], batch: int) -> dict[str, np.ndarray]:
    """The first ``batch`` samples, repeated when there are fewer: the same inputs for every version."""
    n = len(next(iter(feeds.values())))
    idx = np.arange(batch) % n
    return {k: np.ascontiguousarray(v[idx]) for k, v in feeds.items()}


def _rename(feeds: dict[str, np.ndarray], inputs: list[TensorSpec]) -> dict[str, np.ndarray]:
    """The same arrays for another model: by name, else by position."""
    if all(spec.name in feeds for spec in inputs):
        return {spec.name: feeds[spec.name] for spec in inputs}
    if len(inputs) != len(feeds):
        raise StudioError("the reference model takes different inputs; give a dataset to compare them on")
    return {spec.name: array for spec, array in zip(inputs, feeds.values(), strict=True)}


def random_feeds(
    inputs: list[TensorSpec],
    batch: int,
    *,
    seed: int = 0,
    input_shapes: Sequence[tuple[int, ...]] | None = None,
) -> dict[str, np.ndarray]:
    """Seeded stand-in inputs for timing without a dataset.

    Floats are standard normal; integer inputs are zeros (a valid token, type or position id
    in any vocabulary) except masks, which are ones so that no sample is masked out entirely.
    Sizes the model leaves open are taken from ``input_shapes`` (one full shape per input, in
    order, as the user gave them for the model).
    """
    rng = np.random.default_rng(seed)
    feeds = {}
    for i, spec in enumerate(inputs):
        given = input_shapes[i] if input_shapes and i < len(input_shapes) else None
        dims = tuple(given[1:] if given else spec.shape[1:])
        unknown = [d for d in dims if not isinstance(d, int) or d < 0]
        if unknown:
            raise StudioError(
                f"the model's input '{spec.name}' has a dimension '{unknown[0]}' of unknown size; "
                "give a dataset so that it can be timed on real samples"
            )
        shape, dtype = (batch, *dims), np.dtype(spec.dtype)
        if dtype.kind == "f":
            feeds[spec.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b" or "mask" in spec.name.lower():
            feeds[spec.name] = np.ones(shape, dtype=dtype)
        else:
            feeds[spec.name] = np.zeros(shape, dtype=dtype)
    return feeds
