"""A real project made once per session (imported, derived and measured versions), copied per test.
The share commands run through the suite's ``studio_cli`` fixture, as a user runs them."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from studio.core.benchmark import BenchmarkSettings
from studio.core.data import DatasetSpec
from studio.core.resources import resource
from studio.engine import Engine
from studio.project import Project
from studio.versions import check_model_file

FAST = BenchmarkSettings(min_runs=5, min_seconds=0.05, threads=1, warmup=2)
CHILD_NAME = 'int8 "fast" <script>alert(1)</script>'


@dataclass(frozen=True)
class MadeProject:
    root: Path
    author_data_dir: Path  # the machine that made it, where the architecture file is trusted
    child_name: str = CHILD_NAME


def _quantized_copy(folder: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = folder / "digits_int8.onnx"
    quantize_dynamic(str(resource("demo", "digits_cnn.onnx")), str(out), weight_type=QuantType.QInt8)
    return out


def _make_project(root: Path, scratch: Path) -> None:
    """baseline (ONNX) → int8 child, both measured on the digits sample; an architecture file."""
    with Project.create(root, name="Digits <team> & co") as project:
        baseline = project.import_model(resource("demo", "digits_cnn.onnx"), name="baseline")
        child = project.add_checked_model(
            check_model_file(_quantized_copy(scratch)),
            name=CHILD_NAME,
            parent=baseline,
            technique="quantize.dynamic",
            technique_params={"weight_type": "int8", "per_channel": False},
        )
        project.import_model(
            resource("demo", "digits_cnn.py"),
            weights=resource("demo", "digits_cnn.safetensors"),
            name="architecture",
            trust=True,
        )
        with Engine.for_project(project) as engine:
            for version in (baseline, child):
                engine.measure(version, dataset=DatasetSpec(source="digits"), settings=FAST)


@pytest.fixture(scope="session")
def made_project(tmp_path_factory: pytest.TempPathFactory) -> MadeProject:
    base = tmp_path_factory.mktemp("made")
    author = base / "author-data"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STUDIO_DATA_DIR", str(author))
        _make_project(base / "project", base)
    return MadeProject(base / "project", author)


@pytest.fixture
def project_dir(made_project: MadeProject, tmp_path: Path) -> Path:
    """A private copy of the made project (without SQLite's side files: it is closed)."""
    target = tmp_path / "project"
    shutil.copytree(made_project.root, target)
    return target


@pytest.fixture
def author_trust(made_project: MadeProject, monkeypatch: pytest.MonkeyPatch) -> None:
    """Act as the machine that made the project (its architecture file is trusted there)."""
    monkeypatch.setenv("STUDIO_DATA_DIR", str(made_project.author_data_dir))
