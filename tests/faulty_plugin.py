"""The test plugin whose techniques misbehave on purpose (crash, hang, break the output, change
nothing), and the real command line run with it installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

FAULTY = Path(__file__).parent / "plugins" / "faulty"


def studio_with_faulty(*args: object) -> subprocess.CompletedProcess:
    """`studio ARGS` in a subprocess that also finds the faulty techniques."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FAULTY), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "studio", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
