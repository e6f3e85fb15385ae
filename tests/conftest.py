"""Suite-wide setup: no test touches the user's real data folder or needs a display."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# As on a user's machine, Python writes bytecode: a build machine's PYTHONDONTWRITEBYTECODE would hide
# every place where the studio lets it land in a project (and the project then fails to share).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own machine-level data folder (trust decisions, settings, demo project)."""
    data = tmp_path_factory.mktemp("studio-data")
    monkeypatch.setenv("STUDIO_DATA_DIR", str(data))
    return data


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)


@pytest.fixture
def studio_cli(tmp_path: Path):
    """Run the real `studio` command line in a subprocess, as a user would."""

    def run(*args: str, timeout: float = 240, cwd: Path | None = None) -> CliResult:
        proc = subprocess.run(
            [sys.executable, "-m", "studio", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd or tmp_path,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return run


@pytest.fixture(scope="session")
def corpus_models(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every model of ``tests/model_corpus.py``, built once for the whole run: name → Made."""
    from model_corpus import CORPUS

    return {
        name: build(tmp_path_factory.mktemp(f"corpus{i}")) for i, (name, build) in enumerate(CORPUS.items())
    }
