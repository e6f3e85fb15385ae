"""Real models for the quantization tests, exported once per session from real torch modules.

* the shipped digits CNN (ONNX, and its architecture file + weights as a PyTorch model);
* a small BERT-style encoder with trained-like outlier channels (tests/benchmarks/encoder.py),
  with token-id inputs and an attention mask, and a dataset of padded token sequences;
* a small MLP whose Linear layers export as Gemm, with labelled float samples.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from studio.core.data import DatasetSpec
from studio.core.models import ModelFiles, collect_files
from studio.core.resources import resource

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from encoder import EncoderConfig, build_encoder, export_encoder, random_token_dataset  # noqa: E402

TINY = EncoderConfig(vocab=500, hidden=64, layers=2, heads=4, ffn=256, max_positions=64)
SEQ_LEN = 32


@pytest.fixture(scope="session")
def digits_onnx() -> Path:
    return resource("demo", "digits_cnn.onnx")


@pytest.fixture(scope="session")
def digits_torch() -> ModelFiles:
    """The digits CNN as PyTorch: its architecture file and safetensors weights."""
    return collect_files(
        resource("demo", "digits_cnn.py"), weights=resource("demo", "digits_cnn.safetensors")
    )


@pytest.fixture(scope="session")
def digits() -> DatasetSpec:
    return DatasetSpec(source="digits")


@pytest.fixture(scope="session")
def encoder_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("encoder")
    return export_encoder(build_encoder(TINY, outliers=3), folder / "encoder.onnx", seq_len=SEQ_LEN)


@pytest.fixture(scope="session")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> DatasetSpec:
    path = tmp_path_factory.mktemp("tokens") / "tokens.npz"
    random_token_dataset(path, n=120, seq_len=SEQ_LEN, vocab=TINY.vocab, seed=3)
    return DatasetSpec(source=str(path))


class Mlp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@pytest.fixture(scope="session")
def mlp_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("mlp") / "mlp.onnx"
    torch.onnx.export(
        Mlp().eval(),
        (torch.randn(1, 16),),
        str(path),
        dynamo=False,
        input_names=["x"],
        output_names=["logits"],
        dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
    )
    return path


@pytest.fixture(scope="session")
def mlp_data(tmp_path_factory: pytest.TempPathFactory) -> DatasetSpec:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 16)).astype(np.float32)
    y = (x[:, :4].argmax(axis=1)).astype(np.int64)
    path = tmp_path_factory.mktemp("mlpdata") / "mlp.npz"
    np.savez(path, x=x, y=y)
    return DatasetSpec(source=str(path))


@pytest.fixture
def small_digits(tmp_path: Path) -> DatasetSpec:
    """Fifteen digits: too few to calibrate on."""
    from studio.core.data import load_dataset

    full = load_dataset("digits")
    path = tmp_path / "few.npz"
    np.savez(path, x=full.arrays["x"][:15], y=full.labels[:15])
    return DatasetSpec(source=str(path))
