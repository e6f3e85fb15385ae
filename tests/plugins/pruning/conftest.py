"""Small real models and datasets for the pruning techniques: an architecture file with weights
beside it (as a user imports one), and .npz datasets with and without labels."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from studio.core.data import DatasetSpec
from studio.core.models import ModelFiles, collect_files

TINY_SOURCE = textwrap.dedent(
    """
    from torch import nn

    INPUT_SHAPE = (1, 1, 8, 8)


    def build_model():
        return nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(16, 4),
        )
    """
)

# A skip connection: both convolutions feeding the sum must keep the same channels.
RESIDUAL_SOURCE = textwrap.dedent(
    """
    import torch
    from torch import nn

    INPUT_SHAPE = (1, 1, 8, 8)


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(1, 8, 3, padding=1)
            self.body = nn.Conv2d(8, 8, 3, padding=1)
            self.head = nn.Linear(8, 4)

        def forward(self, x):
            x = torch.relu(self.stem(x))
            x = x + torch.relu(self.body(x))
            return self.head(x.mean(dim=(2, 3)))


    def build_model():
        return Net()
    """
)

# Nothing to prune: the only layer is the classifier.
LINEAR_SOURCE = textwrap.dedent(
    """
    from torch import nn

    INPUT_SHAPE = (1, 6)


    def build_model():
        return nn.Sequential(nn.Linear(6, 3))
    """
)


def write_model(
    folder: Path, source: str, name: str = "net.py", seed: int = 0, trained: bool = True
) -> ModelFiles:
    """An architecture file and its safetensors weights, as a user would import them.

    ``trained`` spreads the BatchNorm scales as training does; fresh ones are all 1.0.
    """
    import torch
    from safetensors.torch import save_file

    from studio.core.torch_structure import build_fresh

    folder.mkdir(parents=True, exist_ok=True)
    arch = folder / name
    arch.write_text(source, encoding="utf-8")
    torch.manual_seed(seed)
    module = build_fresh(arch)
    if trained:
        with torch.no_grad():
            for layer in module.modules():
                if isinstance(layer, torch.nn.BatchNorm2d):
                    layer.weight.uniform_(0.5, 1.5)
    state = {k: v.contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(folder / "weights.safetensors"))
    return collect_files(arch, weights=folder / "weights.safetensors")


def quadrant_data(n: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """8×8 images whose class is the brightest quadrant: easy enough to learn in a few epochs."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.3, size=(n, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 4, size=n)
    for i, label in enumerate(y):
        r, c = divmod(int(label), 2)
        x[i, 0, r * 4 : r * 4 + 4, c * 4 : c * 4 + 4] += 1.0
    return x, y.astype(np.int64)


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ModelFiles]:
    root = tmp_path_factory.mktemp("pruning-models")
    return {
        "tiny": write_model(root / "tiny", TINY_SOURCE),
        "residual": write_model(root / "residual", RESIDUAL_SOURCE),
        "linear": write_model(root / "linear", LINEAR_SOURCE),
        "untrained": write_model(root / "untrained", TINY_SOURCE, trained=False),
    }


@pytest.fixture(scope="session")
def quadrants():
    """``quadrant_data`` itself, for a test that needs samples no step trained on (another seed)."""
    return quadrant_data


@pytest.fixture(scope="session")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> DatasetSpec:
    path = tmp_path_factory.mktemp("pruning-data") / "quadrants.npz"
    x, y = quadrant_data()
    np.savez(path, x=x, y=y)
    return DatasetSpec(source=str(path))


@pytest.fixture(scope="session")
def unlabelled(tmp_path_factory: pytest.TempPathFactory) -> DatasetSpec:
    path = tmp_path_factory.mktemp("pruning-data") / "inputs.npz"
    x, _ = quadrant_data()
    np.savez(path, x=x)
    return DatasetSpec(source=str(path))
