"""A demo project with the versions the graph tests draw, made once per test session by the real
engine: v2 pruned to half the channels (names kept, initializers narrower), v3 quantized by
quantize.auto (static QDQ INT8, with per-layer sensitivity), and v1 timed per layer (`bench --layers`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

_made: dict[Path, tuple[Path, Path]] = {}


def graph_project(
    tmp_path_factory: pytest.TempPathFactory, demo_template: tuple[Path, Path]
) -> tuple[Path, Path]:
    """(project folder, trust.json) of the demo project with the versions above; made on first call."""
    template, trust = demo_template
    if template in _made:
        return _made[template]
    from studio.core.benchmark import BenchmarkSettings
    from studio.engine import Engine, PoolSettings

    data = tmp_path_factory.mktemp("graph-data")
    shutil.copy(trust, data / "trust.json")
    root = tmp_path_factory.mktemp("graph-project") / "digits-demo"
    shutil.copytree(template, root)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDIO_DATA_DIR", str(data))
        with Engine.open(root, PoolSettings(cpu_workers=1, gpus=())) as engine:
            v1 = engine.project.store.get_version(1)
            pruned = engine.run_step(
                v1, "prune.structured", {"ratio": 0.5, "finetune_epochs": 0}, device="cpu", measure=None
            )
            assert pruned.version.id == 2
            auto = engine.run_step(
                v1,
                "quantize.auto",
                {"cosine_floor": 0.9995, "mode": "static", "sensitivity_samples": 8},
                dataset="digits",
                device="cpu",
                measure=None,
            )
            assert auto.version.id == 3 and auto.version.details.get("sensitivity")
            engine.measure(
                v1, settings=BenchmarkSettings(layers=True, threads=1, warmup=2, min_runs=5, min_seconds=0.1)
            )
    _made[template] = (root, data / "trust.json")
    return _made[template]


def copy_for_test(made: tuple[Path, Path], tmp_path: Path, data_dir: Path) -> Path:
    """A fresh copy of the project for one test, trusted on that test's private data folder."""
    root, trust = made
    copy = tmp_path / root.name
    shutil.copytree(root, copy)
    shutil.copy(trust, data_dir / "trust.json")
    return copy
