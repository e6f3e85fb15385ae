"""safetensors weights files: a JSON header and raw tensor bytes, weights for an architecture file.

Nothing in the format can run code, which is why the studio saves changed PyTorch models this way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.core.formats.content import Container, container


def match(path: Path, head: bytes) -> bool:
    """An 8-byte header length that fits the file, then the header's opening brace."""
    return container(path, head) is Container.SAFETENSORS


def read(path: Path) -> dict[str, Any]:
    """The tensors, on the CPU."""
    from safetensors.torch import load_file

    return load_file(str(path), device="cpu")
