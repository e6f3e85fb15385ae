"""An architecture `.py` file with ``build_model()``, plus a weights file: Python code, so it needs trust.

The file is run by :func:`studio.core.architecture.import_architecture`, the one place the studio
executes a model's own source. A model the studio changed (pruned, shrunk) is this format too,
with a structure file beside it that reshapes the fresh model before the weights go in
(:mod:`studio.core.torch_structure`).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.api import ModelFormatError, first_line
from studio.core.architecture import import_architecture
from studio.core.formats import safetensors_format, state_dict
from studio.core.formats.content import Container, Text, classify_text, container, top_level_names
from studio.core.formats.kinds import WORDS, Kind, identify
from studio.core.formats.origins import Origin, remember
from studio.core.formats.untrusted import untrusted_error
from studio.core.model_files import ModelFiles, ModelFormat
from studio.core.torch_structure import apply_structure_file, files_beside, find_structure, restore_aliases

if TYPE_CHECKING:
    import torch

FORMAT = ModelFormat.TORCH_ARCHITECTURE


def match(path: Path, head: bytes) -> bool:
    """Text that parses as Python and is a `.py` or defines ``build_model`` (read, never run)."""
    return container(path, head) is Container.TEXT and classify_text(path) is Text.PYTHON


def runs_code(files: ModelFiles) -> bool:
    return True


def companions(main: Path, weights: Path | None) -> tuple[tuple[Path, ...], Path]:
    """The files that go with an architecture file: a structure file the studio saved beside it,
    and its weights (named by the user, or saved beside the structure file), each checked."""
    _check_defines_build_model(main)
    extra, weights = files_beside(main, weights)
    return extra, _check_weights(main, weights)


def _check_defines_build_model(main: Path) -> None:
    tree = ast.parse(main.read_text(encoding="utf-8"), filename=main.name)
    if "build_model" not in top_level_names(tree):
        raise ModelFormatError(
            f"{main.name} has no build_model() function: define one that returns the model"
        )


def _check_weights(main: Path, weights: Path | None) -> Path:
    if weights is None:
        raise ModelFormatError(
            f"{main.name} is an architecture file: pass its weights too (--weights WEIGHTS.pt or .safetensors)"
        )
    weights = Path(weights).absolute()
    if not weights.exists():
        raise ModelFormatError(f"the weights file {weights} does not exist")
    if not weights.is_file():
        raise ModelFormatError(f"the weights path {weights} is not a file")
    kind = identify(weights).kind
    if kind not in (Kind.STATE_DICT, Kind.SAFETENSORS):
        raise ModelFormatError(
            f"{weights.name} is not a weights file (a state_dict .pt or .safetensors): {WORDS[kind]}"
        )
    try:
        return weights.relative_to(main.parent)
    except ValueError:
        return weights


def open(files: ModelFiles, *, trusted: bool) -> torch.nn.Module:
    """``build_model()`` filled strictly with the weights, in eval mode; refused before torch is imported (and
    before the file runs) unless the user trusted it."""
    if not trusted:
        raise untrusted_error(files.main, files.format)
    import torch

    namespace = import_architecture(files.main)
    build = getattr(namespace, "build_model", None)
    if not callable(build):
        raise ModelFormatError(
            f"{files.main.name} has no build_model() function: define one that returns the model"
        )
    try:
        module = build()
    except Exception as exc:
        raise ModelFormatError(f"build_model() in {files.main.name} failed: {first_line(exc)}") from None
    if not isinstance(module, torch.nn.Module):
        raise ModelFormatError(
            f"build_model() in {files.main.name} returned a {type(module).__name__}, not a torch.nn.Module"
        )
    if files.weights is None:
        raise ModelFormatError(f"{files.main.name} is an architecture file and needs its weights (--weights)")
    structure = find_structure(files)
    if structure is None:
        _load_weights_into(module, files.weights_path, files.main.name)
    else:  # layer shapes differ from build_model(): reshape, then load
        aliases = apply_structure_file(module, structure)
        shaped = f"{files.main.name} as {structure.name} shapes it"
        _load_weights_into(module, files.weights_path, shaped, aliases)
    remember(module, Origin(namespace=namespace))
    return module.eval()


def read_weights(weights: Path) -> dict:
    """A state_dict from `.pt` (weights only) or `.safetensors`; an unreadable file is one sentence."""
    try:
        if identify(weights).kind is Kind.SAFETENSORS:
            return safetensors_format.read(weights)
        return state_dict.read(weights)
    except ModelFormatError:
        raise
    except Exception as exc:
        raise ModelFormatError(f"{weights.name} could not be read: {first_line(exc)}") from None


def _load_weights_into(
    module: torch.nn.Module, weights: Path, arch_name: str, aliases: Mapping[str, str] | None = None
) -> None:
    """Load strictly; ``aliases`` (tied names a structure file recorded) are restored first."""
    state = read_weights(weights)
    if aliases:
        restore_aliases(state, aliases, weights.name)
    problem = _state_dict_mismatch(module, state)
    if problem:
        raise ModelFormatError(f"{weights.name} does not fit {arch_name}: {problem}")
    module.load_state_dict(state, strict=True)


def _state_dict_mismatch(module: torch.nn.Module, state: Mapping[str, Any]) -> str | None:
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} is {tuple(state[k].shape)} but the model wants {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing ({_few(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({_few(unexpected)})")
    if wrong:
        parts.append(_few(wrong))
    return "; ".join(parts) or None


def _few(items: Sequence[str], n: int = 3) -> str:
    shown = ", ".join(items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")
