"""What the graph tab shows of one version: its layer rows and a file Netron can draw (no Qt).

Computed off the UI thread: reading a large ONNX graph or converting a PyTorch model takes
seconds, and a PyTorch model's conversion is kept (by artifact hash) so it happens once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.errors import StudioError, UntrustedFileError
from studio.project import Project
from studio.store import ModelVersion


@dataclass(frozen=True)
class VersionView:
    """What the graph tab shows of one version: its layer rows and a file Netron can draw."""

    version: ModelVersion
    layers: list
    graph_file: Path | None
    problem: str | None = None  # why there is no graph (an untrusted file, a failed conversion)
    untrusted: UntrustedFileError | None = None  # the problem is a file that runs code, not trusted here
    graph_extra: tuple[Path, ...] = ()  # the other files the graph file needs (ONNX external data)
    times: dict[str, dict] | None = None  # per-node times of its latest `bench --layers` measurement
    sensitivity: dict[str, float] | None = None  # per-node quantization sensitivity (quantize.auto)


def version_view(project: Project, version: ModelVersion, cache_dir: Path) -> VersionView:
    """Layers and a drawable file: ONNX as stored; PyTorch converted once to ONNX under ``cache_dir``.

    Netron cannot draw an architecture file with separate weights, so PyTorch versions are shown
    through the same ONNX conversion the layer table is computed from, keyed by artifact hash.
    """
    from studio.core.graph import inspect_model
    from studio.core.models import ModelFiles, ModelFormat
    from studio.measurements import layer_times_of

    files = project.model_files(version)
    timed = layer_times_of(version, project.store.list_measurements(version.id))
    times = None if timed is None else timed["nodes"]
    sensitivity = sensitivity_of(version.details)
    if files.format is ModelFormat.ONNX:
        extra = tuple(files.main.parent / name for name in files.extra)
        return VersionView(
            version,
            project.inspect(version).layers,
            files.main,
            graph_extra=extra,
            times=times,
            sensitivity=sensitivity,
        )
    onnx_file = Path(cache_dir) / f"{version.artifact}.onnx"
    try:
        if not onnx_file.is_file():
            _export_for_graph(project, version, onnx_file)
    except UntrustedFileError as error:
        return VersionView(version, [], None, error.reason, untrusted=error)
    except StudioError as error:
        return VersionView(version, [], None, str(error))
    layers = inspect_model(ModelFiles(onnx_file, ModelFormat.ONNX)).layers
    return VersionView(version, layers, onnx_file, times=times, sensitivity=sensitivity)


def sensitivity_of(details: dict | None) -> dict[str, float] | None:
    """Node → quantization sensitivity (mean 1 − cosine with only that node quantized), as
    quantize.auto records it in the version's details; None when it measured none."""
    rows = (details or {}).get("sensitivity") or []
    found = {
        str(row["node"]): float(row["sensitivity"])
        for row in rows
        if isinstance(row, dict) and row.get("node") and isinstance(row.get("sensitivity"), (int, float))
    }
    return found or None


def _export_for_graph(project: Project, version: ModelVersion, target: Path) -> None:
    from studio.core.models import export_torch_files
    from studio.core.trust import is_model_trusted
    from studio.versions import input_shapes_of

    files = project.model_files(version)
    target.parent.mkdir(parents=True, exist_ok=True)
    export_torch_files(files, target, trusted=is_model_trusted(files), input_shapes=input_shapes_of(version))
