"""A whole module saved with torch.save: unpickling it runs code named by the file, so it needs trust.

It is told apart from a weights file by torch's safe loader refusing it (:mod:`.state_dict`).
Opening it also needs the module's classes to be importable here, which a user may not expect:
the refusal says what to save instead.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from studio.api import ModelFormatError, first_line
from studio.core.formats.content import ZIP_MAGIC
from studio.core.formats.state_dict import holds_code, is_torch_save
from studio.core.formats.untrusted import untrusted_error
from studio.core.model_files import ModelFiles, ModelFormat

if TYPE_CHECKING:
    import torch

FORMAT = ModelFormat.TORCH_PICKLE


def match(path: Path, head: bytes) -> bool:
    """A torch.save file that the safe loader refuses because it names Python objects to build."""
    return is_torch_save(path, head) and holds_code(path, mmap=head.startswith(ZIP_MAGIC))


def runs_code(files: ModelFiles) -> bool:
    return True


def open(files: ModelFiles, *, trusted: bool) -> torch.nn.Module:
    """The unpickled module in eval mode; refused before torch is imported unless the user trusted the file."""
    if not trusted:
        raise untrusted_error(files.main, files.format)
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(files.main, weights_only=False, map_location="cpu")
    except (ModuleNotFoundError, AttributeError) as exc:
        raise ModelFormatError(
            f"{files.main.name} needs Python code that is not installed here ({first_line(exc)}); "
            "save the model as TorchScript, .pt2 or an architecture .py file instead"
        ) from None
    except Exception as exc:
        raise ModelFormatError(f"{files.main.name} is a damaged PyTorch file: {first_line(exc)}") from None
    if not isinstance(obj, torch.nn.Module):
        raise ModelFormatError(f"{files.main.name} holds a {type(obj).__name__}, not a PyTorch module")
    return obj.eval()
