"""Where the shipped assets (demo model, digits sample, icons) are, in a checkout or an install."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_INSTALLED = Path(sys.prefix) / "share" / "model-optimization-studio" / "resources"


def resources_dir() -> Path:
    override = os.environ.get("STUDIO_RESOURCES")
    if override:
        return Path(override)
    checkout = Path(__file__).resolve().parents[2] / "resources"
    if checkout.is_dir():
        return checkout
    bundled = Path(getattr(sys, "_MEIPASS", "")) / "resources"
    if bundled.is_dir():
        return bundled
    return _INSTALLED


def resource(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)
