"""`studio export --format tensorrt`: the TensorRT-ready ONNX file, its trtexec command, and the
engine itself where this machine can build one."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from studio.api import StudioError
from studio.core.models import ModelFiles, ModelFormat, load_onnx, onnx_io_specs
from studio.export.onnx_export import OnnxExport, export_onnx_version, export_target
from studio.export.tensorrt import (
    BENCHMARK_RUNS,
    MIN_OPSET,
    TIMING_CACHE_NAME,
    ShapeRange,
    benchmark_engine,
    build_engine,
    shape_ranges,
    trtexec_command,
    unavailable_reason,
    write_trtexec_file,
)
from studio.store import ModelVersion

if TYPE_CHECKING:
    from studio.project import Project


@dataclass(frozen=True)
class TensorRTExport:
    onnx: OnnxExport
    engine: Path | None  # None where no engine could be built here
    reason: str | None  # why not
    command: list[str]
    command_file: Path
    timing_cache: Path
    shapes: list[ShapeRange]
    benchmark: dict | None

    def to_dict(self) -> dict:
        return {
            "format": "tensorrt",
            "engine": None if self.engine is None else str(self.engine),
            "engine_size_bytes": None if self.engine is None else self.engine.stat().st_size,
            "built": self.engine is not None,
            "reason": self.reason,
            "onnx": self.onnx.to_dict(),
            "trtexec_command": shlex.join(self.command),
            "trtexec_file": str(self.command_file),
            "timing_cache": str(self.timing_cache),
            "shapes": [
                {"name": s.name, "min": list(s.min), "opt": list(s.opt), "max": list(s.max)}
                for s in self.shapes
            ],
            "benchmark": self.benchmark,
        }


def export_tensorrt(
    project: Project,
    version: ModelVersion,
    *,
    out: Path | None = None,
    opset: int | None = None,
    dynamic_batch: bool = False,
    min_batch: int = 1,
    opt_batch: int = 1,
    max_batch: int = 16,
    runs: int = BENCHMARK_RUNS,
) -> TensorRTExport:
    """Write ``<name>.onnx`` and ``<name>.trtexec.txt`` beside the engine path ``out`` (default
    ``<project>/exports/<name>.engine``), then build and time the engine if TensorRT can run here."""
    if opset is not None and opset < MIN_OPSET:
        raise StudioError(f"TensorRT needs ONNX opset {MIN_OPSET} or newer, not {opset}")
    engine = export_target(project, version, out, ".engine")
    if engine.suffix.lower() == ".onnx":
        raise StudioError(
            "with --format tensorrt, --out names the engine file (.engine or .plan); "
            "the ONNX file is written beside it"
        )
    # Refuse open dimensions and bad batch ranges before anything is written.
    shape_ranges(version.inputs, min_batch=min_batch, opt_batch=opt_batch, max_batch=max_batch)
    exported = export_onnx_version(
        project,
        version,
        out=engine.with_suffix(".onnx"),
        opset=opset,
        dynamic_batch=dynamic_batch,
        min_opset=MIN_OPSET,
        require_checker=True,
    )
    inputs, _ = onnx_io_specs(
        load_onnx(ModelFiles(exported.path, ModelFormat.ONNX), load_external_data=False)
    )
    ranges = shape_ranges(inputs, min_batch=min_batch, opt_batch=opt_batch, max_batch=max_batch)
    cache = engine.parent / TIMING_CACHE_NAME
    command = trtexec_command(exported.path.name, engine.name, ranges, cache.name)
    command_file = write_trtexec_file(engine.with_suffix(".trtexec.txt"), command, ranges)
    reason = unavailable_reason()
    benchmark = None
    if reason is None:
        build_engine(exported.path, engine, ranges, cache)
        benchmark = benchmark_engine(engine, ranges, runs=runs)
    return TensorRTExport(
        onnx=exported,
        engine=engine if reason is None else None,
        reason=reason,
        command=command,
        command_file=command_file,
        timing_cache=cache,
        shapes=ranges,
        benchmark=benchmark,
    )
