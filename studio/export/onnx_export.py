"""A version as one standalone ONNX file, for another runtime or another machine.

The file is built in a staging folder beside its destination, checked with the ONNX checker and
run with ONNX Runtime on the same inputs as its source, and only then moved into place: a
refused or failed export leaves nothing behind. Models whose weights pass 2 GB (the protobuf
limit) keep them in one ``<name>.onnx.data`` file beside the model.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from studio.api import ModelFormatError, StudioError, first_line
from studio.core.files import staging_dir
from studio.core.models import (
    ModelFiles,
    ModelFormat,
    load_onnx,
    load_torch_module,
    torch_example_inputs,
    torch_input_specs,
)
from studio.core.models import export_onnx as export_torch_module
from studio.core.runtime import OnnxRunner, Runner, TorchRunner
from studio.core.trust import is_model_trusted
from studio.export.compare import comparison_feeds, max_abs_difference, run_in_batches, sample_count
from studio.store import ModelVersion, Store
from studio.versions import input_shapes_of

if TYPE_CHECKING:
    import onnx

    from studio.project import Project

EXPORTS_DIR = "exports"
TWO_GB = 2 * 1024**3
DEFAULT_TORCH_OPSET = 17
OLDEST_OPSET = 7
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class OnnxExport:
    """What was written and how closely it follows its source."""

    path: Path
    files: tuple[Path, ...]
    opset: int
    dynamic_batch: bool
    source_runtime: str
    max_abs_diff: float | None
    compared_on: str
    checker_ok: bool
    checker_error: str | None = None

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files)

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "files": [str(p) for p in self.files],
            "size_bytes": self.size_bytes,
            "opset": self.opset,
            "dynamic_batch": self.dynamic_batch,
            "source_runtime": self.source_runtime,
            "max_abs_diff": self.max_abs_diff,
            "compared_on": self.compared_on,
            "checker_ok": self.checker_ok,
            "checker_error": self.checker_error,
        }


def safe_file_stem(version: ModelVersion) -> str:
    """A file name from a version name, which is user text and may hold anything."""
    return _UNSAFE_NAME.sub("_", version.name).strip("._") or f"v{version.id}"


def export_target(project: Project, version: ModelVersion, out: Path | None, suffix: str) -> Path:
    """``--out`` as an absolute file path, or ``<project>/exports/<version-name><suffix>``."""
    if out is None:
        return project.root / EXPORTS_DIR / f"{safe_file_stem(version)}{suffix}"
    target = Path(out).expanduser().absolute()
    if target.is_dir():
        raise StudioError(f"{target} is a folder; give the file to write, like {target / ('model' + suffix)}")
    if target.resolve().is_relative_to(project.artifacts_dir.resolve()):
        raise StudioError(
            f"{target} is inside the project's model store, which the studio manages; choose another place"
        )
    return target


def check_opset(opset: int | None) -> None:
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if opset is not None and not OLDEST_OPSET <= opset <= newest:
        raise StudioError(
            f"opset {opset} is out of range: this studio writes opsets {OLDEST_OPSET} to {newest}"
        )


def export_onnx_version(
    project: Project,
    version: ModelVersion,
    *,
    out: Path | None = None,
    opset: int | None = None,
    dynamic_batch: bool = False,
    min_opset: int | None = None,
    require_checker: bool = False,
    external_data_above: int = TWO_GB,
) -> OnnxExport:
    """Write ``version`` as ONNX at ``out`` (default ``<project>/exports/<name>.onnx``).

    ``min_opset`` raises an older ONNX model to that opset; ``require_checker`` refuses a file
    the ONNX checker rejects instead of reporting it; ``external_data_above`` is the size from
    which weights go to a side file.
    """
    check_opset(opset)
    target = export_target(project, version, out, ".onnx")
    files = project.model_files(version)
    made = missing_folders(target.parent)
    try:
        with staging_dir(target.parent) as staging:
            staged = staging / target.name
            source, freed = _stage(
                files, version, staged, opset, dynamic_batch, min_opset, external_data_above
            )
            try:
                checker_error = _checker_error(staged)
                if checker_error and require_checker:
                    raise ModelFormatError(f"the exported model fails the ONNX checker: {checker_error}")
                diff, compared_on = _compare(project.store, version, source, staged, freed)
            finally:
                source.close()
            written_opset = default_opset(
                load_onnx(ModelFiles(staged, ModelFormat.ONNX), load_external_data=False)
            )
            placed = _place(staging, target)
    except BaseException:
        for folder in made:
            _remove_if_empty(folder)
        raise
    return OnnxExport(
        path=target,
        files=placed,
        opset=written_opset,
        dynamic_batch=dynamic_batch or _batch_is_free_file(target),
        source_runtime=source.runtime,
        max_abs_diff=diff,
        compared_on=compared_on,
        checker_ok=checker_error is None,
        checker_error=checker_error,
    )


# -- building the file -----------------------------------------------------------------------------


def _stage(files, version, staged, opset, dynamic_batch, min_opset, limit) -> tuple[Runner, bool]:
    """Write the ONNX file into the staging folder; return the source, opened, and whether the
    batch dimension was freed here (an ONNX model exported with a fixed one)."""
    if files.format is ModelFormat.ONNX:
        return _stage_onnx(files, staged, opset, dynamic_batch, min_opset, limit)
    wanted = opset or max(DEFAULT_TORCH_OPSET, min_opset or 0)
    return _stage_torch(files, version, staged, wanted, dynamic_batch, limit), False


def _stage_torch(files, version, staged: Path, opset: int, dynamic_batch: bool, limit: int) -> Runner:
    """TorchScript-based exporter first, torch.export if it fails; code runs only if trusted."""
    module = load_torch_module(files, trusted=is_model_trusted(files))
    specs = torch_input_specs(files, module, input_shapes_of(version))
    raw = staged.parent / "exporter" / staged.name
    export_torch_module(
        module,
        torch_example_inputs(specs),
        raw,
        input_names=[s.name for s in specs],
        dynamic_batch=dynamic_batch,
        opset=opset,
    )
    _save(load_onnx(ModelFiles(raw, ModelFormat.ONNX)), staged, limit, external=False)
    shutil.rmtree(raw.parent)
    return TorchRunner(module, specs, device="cpu")


def _stage_onnx(files, staged, opset, dynamic_batch, min_opset, limit) -> tuple[Runner, bool]:
    """A plain copy when nothing changes; otherwise loaded, converted and saved again."""
    head = load_onnx(files, load_external_data=False)
    current = default_opset(head)
    wanted = opset or max(current, min_opset or 0)
    free = dynamic_batch and not _batch_is_free(head)
    if wanted == current and not free and not files.extra:
        shutil.copyfile(files.main, staged)
    else:
        model = load_onnx(files)
        if wanted != current:
            model = _convert(model, wanted)
        if free:
            _free_batch(model)
        _save(model, staged, limit, external=bool(files.extra))
    return OnnxRunner(files.main, device="cpu", threads=None), free


def default_opset(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise ModelFormatError("the model names no version of the standard ONNX operator set")


def _convert(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    from onnx import version_converter

    try:
        return version_converter.convert_version(model, opset)
    except Exception as exc:
        raise ModelFormatError(f"the model cannot be converted to opset {opset}: {first_line(exc)}") from None


def _batch_is_free(model: onnx.ModelProto) -> bool:
    weights = {t.name for t in model.graph.initializer}
    for value in model.graph.input:
        dims = value.type.tensor_type.shape.dim
        if value.name not in weights and dims and dims[0].HasField("dim_value"):
            return False
    return True


def _batch_is_free_file(path: Path) -> bool:
    return _batch_is_free(load_onnx(ModelFiles(path, ModelFormat.ONNX), load_external_data=False))


def _free_batch(model: onnx.ModelProto) -> None:
    """Name dim 0 of every input and output "batch"; stale inner shapes are dropped, not trusted."""
    weights = {t.name for t in model.graph.initializer}
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if value.name not in weights and dims:
            dims[0].dim_param = "batch"
    del model.graph.value_info[:]


def _save(model: onnx.ModelProto, path: Path, limit: int, *, external: bool) -> None:
    import onnx

    if external or _weight_bytes(model) > limit:
        onnx.save_model(
            model,
            str(path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=f"{path.name}.data",
            size_threshold=1024,
        )
    else:
        onnx.save_model(model, str(path))


def _weight_bytes(model: onnx.ModelProto) -> int:
    return sum(tensor.ByteSize() for tensor in model.graph.initializer)


# -- checking it -----------------------------------------------------------------------------------


def _checker_error(path: Path) -> str | None:
    """The checker reads the file by path, which works for models with external data too."""
    import onnx

    try:
        onnx.checker.check_model(str(path))
    except Exception as exc:
        return first_line(exc)
    return None


def _compare(store: Store, version: ModelVersion, source: Runner, staged: Path, freed: bool):
    """Max abs difference between source and export on the same inputs, and which inputs."""
    from studio.core.evaluate import fixed_batch

    export = OnnxRunner(staged, device="cpu", threads=None, display_name=staged.name)
    try:
        source_batch, export_batch = fixed_batch(source.inputs), fixed_batch(export.inputs)
        count = sample_count(source_batch, export_batch)
        try:
            feeds, where = comparison_feeds(
                store, export.inputs, count, input_shapes=input_shapes_of(version)
            )
        except StudioError as exc:
            return None, f"not compared: {exc}"
        expected = run_in_batches(source, feeds, source_batch or count)
        got = _run_export(export, feeds, export_batch or count, freed)
        return max_abs_difference(expected, got), where
    finally:
        export.close()


def _run_export(export: OnnxRunner, feeds, batch: int, freed: bool):
    try:
        return run_in_batches(export, feeds, batch)
    except StudioError:
        raise
    except Exception as exc:
        hint = " (its graph fixes the batch size, so --dynamic-batch cannot free it)" if freed else ""
        raise ModelFormatError(f"the exported model fails in ONNX Runtime{hint}: {first_line(exc)}") from None


# -- putting it in place ---------------------------------------------------------------------------


def _place(staging: Path, target: Path) -> tuple[Path, ...]:
    """Weights first, then the model that points at them, each by an atomic rename."""
    data_name = f"{target.name}.data"
    placed = [target]
    if (staging / data_name).exists():
        _durable_replace(staging / data_name, target.parent / data_name)
        placed.append(target.parent / data_name)
    _durable_replace(staging / target.name, target)
    if len(placed) == 1:
        (target.parent / data_name).unlink(missing_ok=True)  # left by an earlier export to this name
    return tuple(placed)


def _durable_replace(source: Path, target: Path) -> None:
    with open(source, "rb+") as f:
        os.fsync(f.fileno())
    source.chmod(0o644)  # staged files may be private to the writer; exports are for sharing
    os.replace(source, target)


def missing_folders(folder: Path) -> list[Path]:
    """The folders that writing into ``folder`` would create, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()
