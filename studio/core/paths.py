"""Where the studio keeps its own files on this machine (trust decisions, settings, the demo project).

`STUDIO_DATA_DIR` overrides the platform's data folder, so that tests and portable installs
never touch the user's real one.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "model-optimization-studio"


def data_dir() -> Path:
    override = os.environ.get("STUDIO_DATA_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_demo_project() -> Path:
    return data_dir() / "projects" / "digits-demo"
