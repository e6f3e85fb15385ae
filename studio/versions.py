"""Between model files and project versions: check a file fully, then record it; find it again.

Checking comes first and writes nothing: a file is recognised, its trust settled and its
inputs, parameters and MACs read before the project is touched, so a refused import leaves
the project exactly as it was.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from studio.api import ModelFormatError, StudioError
from studio.core.files import check_artifact_name, sha256_file
from studio.core.graph import ModelInfo, inspect_model
from studio.core.input_roles import assign_roles
from studio.core.models import ModelFiles, ModelFormat, collect_files, load_onnx, onnx_graph_problem
from studio.core.trust import grant, is_model_trusted
from studio.store import ModelVersion

# Formats whose files do not record an input shape: the version keeps the one the user gave.
_SHAPELESS = (ModelFormat.TORCHSCRIPT, ModelFormat.TORCH_PICKLE)


@dataclass(frozen=True)
class CheckedModel:
    """A model file that has been read end to end and may be added to a project."""

    files: ModelFiles
    info: ModelInfo
    trusted: bool
    source_sha256: str
    input_shapes: tuple[tuple[int, ...], ...] | None


def check_model_file(
    path: Path,
    *,
    weights: Path | None = None,
    trust: bool = False,
    input_shapes: list[tuple[int, ...]] | None = None,
    input_roles: Mapping[str, str] | None = None,
    require_values: bool = True,
) -> CheckedModel:
    """Recognise, trust-check and inspect a model file; raises StudioError and writes nothing.

    Each input gets its role (``input_roles`` over what the shapes say): studio.core.input_roles.
    """
    path = Path(path).expanduser()
    files = collect_files(path, weights=Path(weights).expanduser() if weights else None)
    _check_onnx_graph(files)
    trusted = trust or is_model_trusted(files)
    info = inspect_model(files, trusted=trusted, input_shapes=input_shapes)
    roles = assign_roles(info.inputs, input_roles, require_values=require_values)
    info = dataclasses.replace(info, inputs=roles)
    if trust:
        grant(files)  # the user's decision, remembered on this machine once the file proved loadable
    shapes = tuple(tuple(s) for s in input_shapes) if input_shapes else None
    return CheckedModel(files, info, trusted, sha256_file(files.main), shapes)


def _check_onnx_graph(files: ModelFiles) -> None:
    """Refuse an ONNX graph that cannot run, once, where a model enters a project (an import or a
    step's output), rather than on every later inspection or measurement of it."""
    if files.format is not ModelFormat.ONNX:
        return
    problem = onnx_graph_problem(load_onnx(files, load_external_data=False))
    if problem:
        raise ModelFormatError(f"{files.main.name} is not a valid ONNX model: {problem}")


def inspect_file(
    path: Path,
    *,
    weights: Path | None = None,
    trust: bool = False,
    input_shapes: list[tuple[int, ...]] | None = None,
    input_roles: Mapping[str, str] | None = None,
) -> ModelInfo:
    """What a model file is, for describing it: a value still to give is shown, not refused."""
    return check_model_file(
        path,
        weights=weights,
        trust=trust,
        input_shapes=input_shapes,
        input_roles=input_roles,
        require_values=False,
    ).info


def files_of(version: ModelVersion, folder: Path) -> ModelFiles:
    """The ModelFiles of a stored version, whose artifact folder is ``folder``.

    Every name is checked to stay inside that folder: the database may come from someone else.
    """
    for name in (version.main_file, version.weights_file, *version.files):
        if name is not None:
            check_artifact_name(name)
    special = {version.main_file, version.weights_file}
    return ModelFiles(
        main=folder / version.main_file,
        format=ModelFormat(version.format),
        extra=tuple(Path(name) for name in version.files if name not in special),
        weights=Path(version.weights_file) if version.weights_file else None,
    )


def input_shapes_of(version: ModelVersion) -> list[tuple[int, ...]] | None:
    """Concrete input shapes for formats that need them given (symbolic batch → 1)."""
    if ModelFormat(version.format) not in _SHAPELESS:
        return None
    return [tuple(d if isinstance(d, int) else 1 for d in spec.shape) for spec in version.inputs]


def looks_like_path(ref: str) -> bool:
    """A MODEL|VERSION argument names a file when it exists or clearly reads as a path.

    A bare name with a dot is a version name ("baseline+quantize.auto"), not a missing file.
    """
    return Path(ref).expanduser().exists() or "/" in ref or "\\" in ref


def version_ref_error(ref: str) -> StudioError:
    return StudioError(f"'{ref}' is neither a model file nor a version of this project")
