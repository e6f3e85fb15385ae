"""What a model is on disk: its format and the set of files that make it up.

Kept apart from the loaders in :mod:`studio.core.formats` so that the modules those loaders use
(the structure files of changed PyTorch models) can name a model's files without importing them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path


class ModelFormat(str, Enum):
    ONNX = "onnx"
    TORCHSCRIPT = "torchscript"
    EXPORTED_PROGRAM = "exported_program"  # torch.export `.pt2`
    TORCH_ARCHITECTURE = "torch_architecture"  # `.py` with build_model() + state_dict weights
    TORCH_PICKLE = "torch_pickle"  # a whole module saved with torch.save: runs code when loaded

    @property
    def is_torch(self) -> bool:
        return self is not ModelFormat.ONNX


@dataclass(frozen=True)
class ModelFiles:
    """Every file that makes up one model, as found on disk.

    ``main`` is the file the user names (the `.onnx`, `.pt2`, `.pt`, `.py`); ``extra`` holds the
    files it needs beside it (ONNX external data), as paths relative to ``main.parent`` so that
    the set can be copied and keep working.

    ``weights`` (TORCH_ARCHITECTURE only) is relative to ``main.parent`` when the weights sit in
    that folder or below it, and absolute otherwise: a user may keep the architecture file and
    its checkpoint in different places. ``folder / weights`` is right in both cases, and
    :meth:`sources` says where each file goes once the set is copied into one folder.
    """

    main: Path
    format: ModelFormat
    extra: tuple[Path, ...] = field(default=())  # relative to main.parent
    weights: Path | None = None  # relative to main.parent, or absolute; TORCH_ARCHITECTURE only

    @property
    def folder(self) -> Path:
        return self.main.parent

    @property
    def weights_path(self) -> Path | None:
        return None if self.weights is None else self.folder / self.weights

    def all_paths(self) -> list[Path]:
        paths = [self.main, *(self.folder / p for p in self.extra)]
        if self.weights_path is not None:
            paths.append(self.weights_path)
        return paths

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.all_paths())

    def sources(self) -> list[tuple[Path, str]]:
        """(absolute source, name inside one artifact folder) for every file, to copy the set."""
        pairs = [(self.main.absolute(), self.main.name)]
        pairs += [((self.folder / p).absolute(), p.as_posix()) for p in self.extra]
        if self.weights is not None:
            pairs.append((self.weights_path.absolute(), self._weights_name()))
        return pairs

    def moved_to(self, folder: Path) -> ModelFiles:
        """The same model as it is after :meth:`sources` were copied into ``folder``."""
        weights = None if self.weights is None else Path(self._weights_name())
        return replace(self, main=Path(folder) / self.main.name, weights=weights)

    def _weights_name(self) -> str:
        if not self.weights.is_absolute():
            return self.weights.as_posix()
        name = self.weights.name
        return f"weights-{name}" if name == self.main.name else name
