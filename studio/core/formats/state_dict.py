"""torch.save weights files (a state_dict, or a checkpoint that wraps one): weights, not a model.

They are what an architecture file's model is filled from. Whether a torch.save file holds only
tensors or a whole pickled module is asked of torch's safe loader, which refuses exactly what
would run code: the answer separates this format from :mod:`.pickled_module`.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from studio.api import ModelFormatError, first_line
from studio.core.formats.content import ZIP_MAGIC, Container, container, zip_tails
from studio.core.formats.exported_program import is_program_layout
from studio.core.formats.torchscript import has_script_code


def match(path: Path, head: bytes) -> bool:
    """A torch.save file that the safe loader reads whole and that holds a state_dict."""
    return is_torch_save(path, head) and not holds_code(path, mmap=head.startswith(ZIP_MAGIC))


def is_torch_save(path: Path, head: bytes) -> bool:
    """What torch.save writes: its pre-zip pickle, or a zip with ``data.pkl`` and no other format's marks."""
    kind = container(path, head)
    if kind is Container.PICKLE:
        return True
    if kind is not Container.ZIP:
        return False
    tails = zip_tails(path)
    return "data.pkl" in tails and not is_program_layout(tails) and not has_script_code(tails)


def holds_code(path: Path, *, mmap: bool) -> bool:
    """Weights or a whole module? Ask the safe loader: it refuses exactly what would run code.

    A file the loader reads but that holds no weights either is refused: it is no model at all.
    """
    try:
        obj = torch_load_weights(path, mmap=mmap)
    except pickle.UnpicklingError as exc:
        if "global" in str(exc).lower() or "weights only" in str(exc).lower():
            return True
        raise ModelFormatError(f"{path.name} is a damaged PyTorch file: {first_line(exc)}") from None
    except Exception as exc:
        raise ModelFormatError(f"{path.name} is a damaged PyTorch file: {first_line(exc)}") from None
    if find_state_dict(obj) is None:
        raise ModelFormatError(f"{path.name} holds PyTorch data but no model and no weights")
    return False


def torch_load_weights(path: Path, *, mmap: bool = False) -> Any:
    """torch.load with ``weights_only=True``: the only way the studio unpickles an untrusted file."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(path, weights_only=True, map_location="cpu", mmap=mmap)


def find_state_dict(obj: Any) -> dict[str, Any] | None:
    """The tensors of a state_dict, also inside the usual checkpoint wrappers ({"state_dict": ...})."""
    import torch

    if not isinstance(obj, Mapping):
        return None
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return _strip_prefix(dict(obj), "module.")
    for key in ("state_dict", "model_state_dict", "model", "weights"):
        inner = obj.get(key)
        if isinstance(inner, Mapping):
            found = find_state_dict(inner)
            if found is not None:
                return found
    return None


def _strip_prefix(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    """DataParallel saves every key with 'module.'; the bare model has none."""
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix) :]: v for k, v in state.items()}
    return state


def read(path: Path) -> dict[str, Any]:
    """The state_dict of a weights file, unwrapped from its checkpoint."""
    state = find_state_dict(torch_load_weights(path))
    if state is None:
        raise ModelFormatError(f"{path.name} holds no state_dict")
    return state
