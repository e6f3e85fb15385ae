"""TorchScript archives: always code-bearing, since loading one runs its scripted classes' code."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from studio.api import ModelFormatError, first_line
from studio.core.formats.content import Container, container, zip_tails
from studio.core.formats.exported_program import is_program_layout
from studio.core.formats.untrusted import untrusted_error
from studio.core.model_files import ModelFiles, ModelFormat

if TYPE_CHECKING:
    import torch

FORMAT = ModelFormat.TORCHSCRIPT


def match(path: Path, head: bytes) -> bool:
    """A zip archive with a ``code/`` folder (the scripted source) that is not a torch.export one."""
    if container(path, head) is not Container.ZIP:
        return False
    tails = zip_tails(path)
    return not is_program_layout(tails) and has_script_code(tails)


def has_script_code(tails: set[str]) -> bool:
    """Whether zip members (named below the top folder) include TorchScript's scripted source."""
    return any(t.startswith("code/") for t in tails)


def runs_code(files: ModelFiles) -> bool:
    """Always: ``torch.jit.load`` runs the archive's ``__setstate__`` methods, whatever else it holds."""
    return True


def open(files: ModelFiles, *, trusted: bool) -> torch.nn.Module:
    """The scripted module in eval mode; refused before torch is imported unless the user trusted the file."""
    if not trusted:  # before torch is imported: a refusal takes a moment, not seconds
        raise untrusted_error(files.main, files.format)
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = torch.jit.load(str(files.main), map_location="cpu")
    except Exception as exc:
        raise ModelFormatError(
            f"{files.main.name} is a damaged TorchScript file: {first_line(exc)}"
        ) from None
    return module.eval()
