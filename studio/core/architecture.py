"""Running an architecture ``.py`` file: the one place the studio executes a model's own code.

Callers ask only after the user trusted the file (:mod:`studio.core.trust`); the architecture
format (:mod:`studio.core.formats.architecture`) and the structure files in
:mod:`studio.core.torch_structure` both build models this way, so the rules below hold for every
model the studio builds from source.
"""

from __future__ import annotations

import itertools
import sys
import types
from pathlib import Path

from studio.api import ModelFormatError, first_line

# Each run gets a module name of its own, so two architecture files never shadow each other.
_module_counter = itertools.count()


def import_architecture(path: Path) -> types.ModuleType:
    """Run the file's own source as a module under a name of its own.

    Compiled from the bytes read here, never through the import system: that would read a
    ``__pycache__`` file beside it instead of the source (an unchecked stand-in for the file the
    user trusted) and write one into the project's artifact folder, which then no longer matches
    its manifest. A name of its own keeps two architecture files from shadowing each other.
    """
    name = f"_studio_architecture_{next(_module_counter)}_{path.stem.replace('-', '_')}"
    try:
        code = compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ModelFormatError(f"{path.name} cannot be read as Python: {first_line(exc)}") from None
    namespace = types.ModuleType(name)
    namespace.__file__ = str(path)
    sys.modules[name] = namespace  # dataclasses and pickling look the module up by name
    try:
        exec(code, namespace.__dict__)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ModelFormatError(
            f"{path.name} failed to import: {type(exc).__name__}: {first_line(exc)}"
        ) from None
    return namespace
