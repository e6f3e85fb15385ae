"""TensorRT engines: built here when TensorRT and a CUDA GPU are present, prepared for later otherwise.

Every export writes a TensorRT-ready ONNX file (opset 17 or newer, checked, static shapes or a
batch range) and the exact ``trtexec`` command that builds the engine from it, so a machine
without TensorRT still hands over everything a TensorRT machine needs.

TensorRT 10.12+ and 11 networks are strongly typed: precision comes from the ONNX file itself
(an FP16-converted model, or QDQ nodes for INT8), never from builder flags. TensorRT 11 removed
the FP16/INT8 flags and calibrators; on TensorRT 10 strong typing is asked for with the
``STRONGLY_TYPED`` network flag (``--stronglyTyped`` for trtexec), which TensorRT 11 accepts and
ignores. A timing cache beside the engines makes rebuilds of similar layers fast.
"""

from __future__ import annotations

import importlib.util
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.api import StudioError, TensorSpec, first_line
from studio.core.files import atomic_write_bytes, atomic_write_text
from studio.core.hardware import cuda_devices, tensorrt_version

MIN_OPSET = 17
TIMING_CACHE_NAME = "tensorrt.timing.cache"
BENCHMARK_RUNS = 300
WARMUP_RUNS = 20


@dataclass(frozen=True)
class ShapeRange:
    """The shapes one input takes: equal min, opt and max for a static input."""

    name: str
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    @property
    def dynamic(self) -> bool:
        return self.min != self.max


def shape_ranges(
    inputs: Sequence[TensorSpec], *, min_batch: int = 1, opt_batch: int = 1, max_batch: int = 16
) -> list[ShapeRange]:
    """One optimization profile: the batch dimension ranges, every other one must be fixed."""
    if not 1 <= min_batch <= opt_batch <= max_batch:
        raise StudioError(
            f"batch sizes must satisfy 1 ≤ min ≤ opt ≤ max, not {min_batch}, {opt_batch}, {max_batch}"
        )
    ranges = []
    for spec in inputs:
        rest = tuple(spec.shape[1:])
        open_dims = [d for d in rest if not isinstance(d, int) or d < 1]
        if open_dims:
            raise StudioError(
                f"input '{spec.name}' has a dimension '{open_dims[0]}' of open size; TensorRT needs it "
                "fixed: export the model with that dimension static"
            )
        first = spec.shape[0] if spec.shape else None
        if isinstance(first, int) and first > 0:
            shape = (first, *rest)
            ranges.append(ShapeRange(spec.name, shape, shape, shape))
        elif spec.shape:
            ranges.append(ShapeRange(spec.name, (min_batch, *rest), (opt_batch, *rest), (max_batch, *rest)))
        else:
            ranges.append(ShapeRange(spec.name, (), (), ()))
    return ranges


# -- trtexec -----------------------------------------------------------------------------------------


def trtexec_command(
    onnx_path: Path | str, engine_path: Path | str, ranges: Sequence[ShapeRange], timing_cache: Path | str
) -> list[str]:
    """The trtexec arguments that build the same engine as :func:`build_engine`.

    Paths are used as given: pass bare file names for a command that runs in the folder holding
    the files, on whichever machine they were copied to. No precision flags: ``--stronglyTyped`` takes the precision from the ONNX file (required on
    TensorRT 10, the default on 11, where --fp16/--int8 no longer exist).
    """
    command = [
        "trtexec",
        f"--onnx={onnx_path}",
        f"--saveEngine={engine_path}",
        f"--timingCacheFile={timing_cache}",
        "--stronglyTyped",
    ]
    dynamic = [r for r in ranges if r.dynamic]
    if dynamic:
        command += [
            f"--minShapes={_shapes_arg(dynamic, 'min')}",
            f"--optShapes={_shapes_arg(dynamic, 'opt')}",
            f"--maxShapes={_shapes_arg(dynamic, 'max')}",
        ]
    return command


def _shapes_arg(ranges: Sequence[ShapeRange], which: str) -> str:
    return ",".join(f"{_tensor_name(r.name)}:{'x'.join(str(d) for d in getattr(r, which))}" for r in ranges)


def _tensor_name(name: str) -> str:
    """trtexec splits on ':' and ','; a name holding them is quoted with single quotes."""
    return f"'{name}'" if any(c in name for c in ":,'") else name


def trtexec_text(command: Sequence[str], ranges: Sequence[ShapeRange]) -> str:
    """The file handed to a TensorRT machine: the build command, then how to time the engine."""
    engine = next(arg.split("=", 1)[1] for arg in command if arg.startswith("--saveEngine="))
    run = ["trtexec", f"--loadEngine={engine}"]
    if any(r.dynamic for r in ranges):
        run.append(f"--shapes={_shapes_arg([r for r in ranges if r.dynamic], 'opt')}")
    return (
        "# Build the TensorRT engine from the ONNX file beside this one (TensorRT 10.12 or newer);\n"
        "# run it in the folder that holds both files.\n"
        "# Precision comes from the ONNX file (strongly typed network): no --fp16 or --int8 flags.\n"
        "# --stronglyTyped is needed on TensorRT 10 and is the default on TensorRT 11.\n"
        f"{shlex.join(command)}\n\n"
        "# Then time it:\n"
        f"{shlex.join(run)}\n"
    )


# -- building and timing an engine ---------------------------------------------------------------


def unavailable_reason() -> str | None:
    """Why no engine can be built here, or None when TensorRT and a CUDA GPU are both present."""
    if importlib.util.find_spec("tensorrt") is None:
        return "TensorRT is not installed on this machine"
    if not cuda_devices():
        version = tensorrt_version()
        return f"TensorRT{' ' + version if version else ''} is installed, but this machine has no CUDA GPU"
    try:
        import tensorrt  # noqa: F401
    except Exception as exc:
        return f"TensorRT cannot be loaded here ({first_line(exc)})"
    return None


def build_engine(
    onnx_path: Path, engine_path: Path, ranges: Sequence[ShapeRange], timing_cache: Path
) -> Path:
    """Parse the ONNX file into a strongly typed network, build, and write the serialized engine.

    The timing cache is read if present (a cache from another GPU or version starts afresh) and
    written back with what this build measured.
    """
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise StudioError(f"TensorRT cannot parse {onnx_path.name}: {errors or 'no reason given'}")
    config = builder.create_builder_config()
    cache = _load_timing_cache(config, timing_cache)
    config.set_timing_cache(cache, ignore_mismatch=False)
    if any(r.dynamic for r in ranges):
        profile = builder.create_optimization_profile()
        for r in ranges:
            profile.set_shape(r.name, r.min, r.opt, r.max)
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise StudioError(f"TensorRT could not build an engine from {onnx_path.name} (see its log above)")
    atomic_write_bytes(engine_path, bytes(serialized))
    atomic_write_bytes(timing_cache, bytes(config.get_timing_cache().serialize()))
    engine_path.chmod(0o644)
    return engine_path


def _network_flags(trt) -> int:
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    return 0 if flag is None else 1 << int(flag)


def _load_timing_cache(config, path: Path):
    blob = path.read_bytes() if path.is_file() else b""
    try:
        return config.create_timing_cache(blob)
    except Exception:  # written by another TensorRT version: start a fresh one
        return config.create_timing_cache(b"")


def benchmark_engine(
    engine_path: Path, ranges: Sequence[ShapeRange], *, runs: int = BENCHMARK_RUNS, warmup: int = WARMUP_RUNS
) -> dict:
    """Median and spread of synchronous runs at the optimal shapes, on GPU buffers torch owns."""
    import tensorrt as trt
    import torch

    if not torch.cuda.is_available():
        raise StudioError("timing a TensorRT engine needs PyTorch built with CUDA")
    engine = trt.Runtime(trt.Logger(trt.Logger.ERROR)).deserialize_cuda_engine(engine_path.read_bytes())
    if engine is None:
        raise StudioError(f"TensorRT cannot load the engine {engine_path.name}")
    context = engine.create_execution_context()
    buffers = _bind_buffers(trt, torch, engine, context, {r.name: r.opt for r in ranges})
    stream = torch.cuda.Stream()
    for _ in range(warmup):
        context.execute_async_v3(stream.cuda_stream)
    stream.synchronize()
    durations = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        if not context.execute_async_v3(stream.cuda_stream):
            raise StudioError("TensorRT failed to run the engine")
        stream.synchronize()
        durations.append((time.perf_counter_ns() - start) / 1e6)
    del buffers
    batch = max((r.opt[0] for r in ranges if r.opt), default=1)
    return {
        "runs": runs,
        "batch": batch,
        "p50_ms": float(np.percentile(durations, 50)),
        "p90_ms": float(np.percentile(durations, 90)),
        "mean_ms": float(np.mean(durations)),
        "throughput_per_s": batch * 1000.0 / float(np.percentile(durations, 50)),
    }


def _bind_buffers(trt, torch, engine, context, shapes: dict[str, tuple[int, ...]]) -> list:
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    for name in inputs:
        context.set_input_shape(name, shapes[name])
    buffers = []
    for name in names:
        dtype = torch.from_numpy(np.empty(0, dtype=trt.nptype(engine.get_tensor_dtype(name)))).dtype
        shape = tuple(context.get_tensor_shape(name))
        tensor = torch.zeros(shape, dtype=dtype, device="cuda")
        if name in inputs and dtype.is_floating_point:
            tensor.normal_()
        context.set_tensor_address(name, tensor.data_ptr())
        buffers.append(tensor)
    return buffers


def write_trtexec_file(path: Path, command: Sequence[str], ranges: Sequence[ShapeRange]) -> Path:
    atomic_write_text(path, trtexec_text(command, ranges))
    path.chmod(0o644)
    return path
