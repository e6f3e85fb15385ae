"""Small real ONNX models, exported once per session from tiny torch modules."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest


def export(module, args: tuple, path: Path, input_names: list[str], dynamic: dict | None = None) -> Path:
    """The TorchScript exporter (one self-contained file), without its deprecation notice."""
    import torch

    module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=input_names,
            output_names=["logits"],
            dynamic_axes=dynamic,
            opset_version=17,
            dynamo=False,
        )
    return path


def _classifier():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 8 * 8, 10),
    )


def _token_model():
    import torch

    class TokenClassifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(20, 8)
            self.head = torch.nn.Linear(8, 3)

        def forward(self, input_ids, attention_mask):
            mask = attention_mask.unsqueeze(-1).float()
            pooled = (self.embed(input_ids) * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            return self.head(pooled)

    torch.manual_seed(0)
    return TokenClassifier()


@pytest.fixture(scope="session")
def onnx_export():
    return export


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def classifier_onnx(model_dir: Path) -> Path:
    """(batch, 1, 8, 8) float32 -> (batch, 10) logits, any batch size."""
    import torch

    dynamic = {"input": {0: "batch"}, "logits": {0: "batch"}}
    return export(
        _classifier(), (torch.zeros(1, 1, 8, 8),), model_dir / "classifier.onnx", ["input"], dynamic
    )


@pytest.fixture(scope="session")
def classifier_b4_onnx(model_dir: Path) -> Path:
    """The same classifier exported without dynamic axes: it only accepts batches of exactly 4."""
    import torch

    return export(
        _classifier(), (torch.zeros(4, 1, 8, 8),), model_dir / "classifier_b4.onnx", ["input"], None
    )


@pytest.fixture(scope="session")
def perturbed_onnx(model_dir: Path) -> Path:
    """The classifier with slightly different weights: a stand-in for a compressed version."""
    import torch

    model = _classifier()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1 + 0.02 * torch.randn_like(p))  # 2 % relative noise, like a coarse quantization
    dynamic = {"input": {0: "batch"}, "logits": {0: "batch"}}
    return export(model, (torch.zeros(1, 1, 8, 8),), model_dir / "perturbed.onnx", ["input"], dynamic)


@pytest.fixture(scope="session")
def token_onnx(model_dir: Path) -> Path:
    """Two int64 inputs (input_ids, attention_mask) of shape (batch, 6) -> (batch, 3)."""
    import torch

    ids = torch.zeros(1, 6, dtype=torch.int64)
    dynamic = {"input_ids": {0: "batch"}, "attention_mask": {0: "batch"}, "logits": {0: "batch"}}
    return export(
        _token_model(), (ids, ids), model_dir / "tokens.onnx", ["input_ids", "attention_mask"], dynamic
    )


@pytest.fixture(scope="session")
def token_seq_onnx(model_dir: Path) -> Path:
    """The token model with a symbolic sequence length, which random inputs cannot guess."""
    import torch

    ids = torch.zeros(1, 6, dtype=torch.int64)
    axes = {0: "batch", 1: "sequence"}
    dynamic = {"input_ids": axes, "attention_mask": axes, "logits": {0: "batch"}}
    return export(
        _token_model(), (ids, ids), model_dir / "tokens_seq.onnx", ["input_ids", "attention_mask"], dynamic
    )


def ort_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    """The model's logits straight from ONNX Runtime, as the expected value for the studio's figures."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


@pytest.fixture(scope="session")
def ort_logits():
    return ort_outputs


@pytest.fixture(scope="session")
def digits_like(tmp_path_factory: pytest.TempPathFactory, classifier_onnx: Path) -> Path:
    """An .npz of 50 samples for the classifier, labelled with its own predictions but every 4th
    label moved on by one, so the expected accuracy can be worked out exactly."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((50, 1, 8, 8)).astype(np.float32)
    y = ort_outputs(classifier_onnx, x).argmax(axis=1)
    y[::4] = (y[::4] + 1) % 10
    path = tmp_path_factory.mktemp("data") / "small.npz"
    np.savez(path, x=x, y=y)
    return path
