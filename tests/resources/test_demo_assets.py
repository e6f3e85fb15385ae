"""The shipped demo assets are what the demo project, the docs and the first-run tour rely on."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from safetensors.torch import load_file

from studio.core.resources import resource

N_DIGITS = 1797


def _import(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"demo_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    previous, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # keep resources/ free of caches
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = previous
    return module


def _validation_indices(n: int) -> np.ndarray:
    """The studio's split rule, restated: seed-0 permutation, its first 20 % is validation."""
    return np.random.default_rng(0).permutation(n)[: round(n * 0.2)]


@pytest.fixture(scope="module")
def demo_dir() -> Path:
    return resource("demo")


@pytest.fixture(scope="module")
def digits(demo_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(demo_dir / "digits.npz") as data:
        return data["x"], data["y"]


@pytest.fixture(scope="module")
def validation(digits: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    x, y = digits
    idx = _validation_indices(len(y))
    return x[idx], y[idx]


@pytest.fixture(scope="module")
def onnx_session(demo_dir: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(demo_dir / "digits_cnn.onnx"), providers=["CPUExecutionProvider"])


def test_dataset_has_expected_shapes_types_and_labels(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    assert x.shape == (N_DIGITS, 1, 28, 28)
    assert x.dtype == np.float32
    assert y.shape == (N_DIGITS,)
    assert y.dtype == np.int64
    assert set(np.unique(y).tolist()) == set(range(10))
    assert np.isfinite(x).all()
    assert abs(float(x.mean())) < 0.01
    assert abs(float(x.std()) - 1.0) < 0.01


def test_dataset_file_stays_small(demo_dir: Path) -> None:
    assert (demo_dir / "digits.npz").stat().st_size < 3_000_000


def test_script_split_follows_the_studio_rule(demo_dir: Path) -> None:
    script = _import(demo_dir / "make_demo_assets.py")
    val_idx, train_idx = script.split_indices(N_DIGITS)
    np.testing.assert_array_equal(val_idx, _validation_indices(N_DIGITS))
    assert len(val_idx) == 359
    assert sorted(np.concatenate([val_idx, train_idx]).tolist()) == list(range(N_DIGITS))


def test_onnx_file_is_small_self_contained_and_valid(demo_dir: Path) -> None:
    path = demo_dir / "digits_cnn.onnx"
    assert path.stat().st_size < 2_000_000
    model = onnx.load(str(path), load_external_data=False)
    onnx.checker.check_model(model)
    assert not any(onnx.external_data_helper.uses_external_data(t) for t in model.graph.initializer)
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["logits"]
    batch_dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param == "batch"


def test_onnx_model_reaches_98_percent_on_validation_split(
    onnx_session: ort.InferenceSession, validation: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = validation
    logits = onnx_session.run(["logits"], {"input": x})[0]
    assert float((logits.argmax(1) == y).mean()) >= 0.98


def test_architecture_and_weights_match_the_onnx_file(
    demo_dir: Path, onnx_session: ort.InferenceSession, validation: tuple[np.ndarray, np.ndarray]
) -> None:
    architecture = _import(demo_dir / "digits_cnn.py")
    model = architecture.build_model()
    model.load_state_dict(load_file(str(demo_dir / "digits_cnn.safetensors")), strict=True)
    model.eval()
    x = validation[0][:128]
    with torch.no_grad():
        torch_logits = model(torch.from_numpy(x)).numpy()
    ort_logits = onnx_session.run(["logits"], {"input": x})[0]
    np.testing.assert_allclose(torch_logits, ort_logits, rtol=0, atol=1e-4)
    assert tuple(architecture.INPUT_SHAPE) == (1, 1, 28, 28)
