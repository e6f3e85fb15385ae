"""A write the machine refuses half way (a full disk, a file-size limit) is one sentence and leaves nothing.

The limit is the process's own file-size limit (RLIMIT_FSIZE): writing past it fails the way a full
disk does, without filling this machine's disk.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from studio.bundle import pack_project

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="sets a Linux file-size limit")


def _studio_with_a_size_limit(*args: object, limit: int, cwd: Path) -> subprocess.CompletedProcess:
    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "studio", *map(str, args)],
        preexec_fn=limited,
        capture_output=True,
        text=True,
        timeout=240,
        cwd=cwd,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def _one_sentence(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    (sentence,) = result.stderr.strip().splitlines()
    return sentence


def test_a_pack_that_runs_out_of_room_leaves_no_bundle(project_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    result = _studio_with_a_size_limit("pack", project_dir, out / "p.studio", limit=200_000, cwd=tmp_path)
    assert _one_sentence(result).startswith("studio: error: the file grew past the largest size allowed")
    assert list(out.iterdir()) == []


def test_an_unpack_that_runs_out_of_room_leaves_no_project(project_dir: Path, tmp_path: Path) -> None:
    bundle = pack_project(project_dir, tmp_path / "p.studio").path
    place = tmp_path / "place"
    place.mkdir()
    result = _studio_with_a_size_limit("unpack", bundle, place / "opened", limit=300_000, cwd=tmp_path)
    assert _one_sentence(result).startswith("studio: error: the file grew past the largest size allowed")
    assert list(place.iterdir()) == []
