"""What each opened module came from, so its inputs can be described later without reopening it.

An architecture file may declare its inputs (``example_inputs()``, ``INPUT_SHAPE``) and an
exported program carries example inputs; a plain ``torch.nn.Module`` has room for neither. The
record is weak: it goes when the module does.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any


@dataclass
class Origin:
    namespace: Any = None  # the imported architecture file
    example: tuple | None = None  # an ExportedProgram's example inputs
    dynamic_batch: bool = True


_ORIGINS: weakref.WeakKeyDictionary[Any, Origin] = weakref.WeakKeyDictionary()


def remember(module: Any, origin: Origin) -> None:
    _ORIGINS[module] = origin


def origin_of(module: Any) -> Origin:
    """The recorded origin, or an empty one for a module opened some other way."""
    return _ORIGINS.get(module) or Origin()
