"""Real SQLite project databases on disk, with a small lineage: baseline → pruned → int8."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from studio.core.models import TensorSpec
from studio.store import ModelVersion, Store


def fake_sha(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def version_fields(name: str, **overrides: Any) -> dict[str, Any]:
    """What an import records for a small ONNX classifier; tests change what they look at."""
    fields: dict[str, Any] = {
        "name": name,
        "format": "onnx",
        "artifact": fake_sha(name),
        "main_file": "model.onnx",
        "files": ["model.onnx", "model.onnx.data"],
        "size_bytes": 4096,
        "params": 1000,
        "macs": 20000,
        "inputs": [TensorSpec("x", ("batch", 1, 8, 8), "float32")],
        "outputs": [TensorSpec("logits", ("batch", 10), "float32")],
        "source_sha256": fake_sha(f"source of {name}"),
    }
    fields.update(overrides)
    return fields


@pytest.fixture(name="fake_sha")
def fake_sha_fixture() -> Callable[[str], str]:
    """A stand-in artifact hash, distinct per label."""
    return fake_sha


@pytest.fixture(name="version_fields")
def version_fields_fixture() -> Callable[..., dict[str, Any]]:
    return version_fields


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "studio.sqlite"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    store = Store.open(db_path, create=True)
    store.set_project("digits", "0.1.0")
    yield store
    store.close()


@pytest.fixture
def chain(store: Store) -> list[ModelVersion]:
    """baseline (imported) → pruned → int8, as the optimization jobs would record them."""
    baseline = store.add_version(
        **version_fields("baseline", technique="import", source_path="/data/digits.onnx")
    )
    pruned = store.add_version(
        **version_fields("pruned", parent_id=baseline.id, technique="prune.structured", params=500),
        technique_params={"ratio": 0.5},
    )
    int8 = store.add_version(
        **version_fields("int8", parent_id=pruned.id, technique="quantize.static"),
        technique_params={"per_channel": True, "calibration_samples": 64},
    )
    return [baseline, pruned, int8]
