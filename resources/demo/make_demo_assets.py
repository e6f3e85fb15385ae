"""Re-make the shipped demo assets: the digits sample dataset and the small CNN trained on it.

Run from anywhere: ``python resources/demo/make_demo_assets.py``. It writes, next to itself,
``digits.npz``, ``digits_cnn.safetensors``, ``digits_cnn.onnx`` and ``README.md``. Everything is
seeded, so a re-run on the same software versions gives the same files' contents in practice; the
data comes from scikit-learn's bundled copy, so nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import io
import math
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

HERE = Path(__file__).resolve().parent
DATA_PATH = HERE / "digits.npz"
WEIGHTS_PATH = HERE / "digits_cnn.safetensors"
ONNX_PATH = HERE / "digits_cnn.onnx"
CARD_PATH = HERE / "README.md"

# The studio's own split of a dataset (studio.core.data) follows the same rule with the same
# numbers. The two must agree, or the shipped model's "validation" accuracy would be measured on
# images it trained on.
SPLIT_SEED = 0
VALIDATION_FRACTION = 0.2

TRAIN_SEED = 0
EPOCHS = 20
BATCH_SIZE = 64
LEARNING_RATE = 3e-3
WEIGHT_DECAY = 1e-4
MAX_SHIFT = 2
IMAGE_SIZE = 28
TRAIN_THREADS = 2
ONNX_TOLERANCE = 1e-4


def split_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(validation, train) indices: a fixed seed-0 permutation, its first 20 % is validation."""
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_val = round(n * VALIDATION_FRACTION)
    return order[:n_val], order[n_val:]


def load_architecture() -> ModuleType:
    """Import ``digits_cnn.py`` from this folder; it is not part of an installed package."""
    spec = importlib.util.spec_from_file_location("digits_cnn", HERE / "digits_cnn.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # No __pycache__ next to the shipped files: the install copies this folder as it is.
    previous, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = previous
    return module


# ---------------------------------------------------------------------------------------------
# Data


@dataclass
class Digits:
    x: np.ndarray
    y: np.ndarray
    mean: float
    std: float


def make_digits() -> Digits:
    """8x8 scikit-learn digits, upsampled to 28x28 and normalised with the whole set's statistics.

    Values are rounded to float16 precision (still stored as float32) so the file compresses well;
    the model is trained on exactly the rounded values it ships with.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    small = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    big = F.interpolate(small, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)
    mean = float(big.mean())
    std = float(big.std())
    x = ((big - mean) / std).numpy().astype(np.float16).astype(np.float32)
    return Digits(x=x, y=bunch.target.astype(np.int64), mean=mean, std=std)


def save_digits(digits: Digits) -> None:
    np.savez_compressed(DATA_PATH, x=digits.x, y=digits.y)


def shift_batch(x: torch.Tensor, background: float, generator: torch.Generator) -> torch.Tensor:
    """Move each image by up to MAX_SHIFT pixels each way, filling with the background value."""
    padded = F.pad(x, (MAX_SHIFT,) * 4, value=background)
    offsets = torch.randint(0, 2 * MAX_SHIFT + 1, (x.shape[0], 2), generator=generator)
    rows = [
        padded[i, :, dy : dy + IMAGE_SIZE, dx : dx + IMAGE_SIZE]
        for i, (dy, dx) in enumerate(offsets.tolist())
    ]
    return torch.stack(rows)


# ---------------------------------------------------------------------------------------------
# Training


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        predictions = torch.cat([model(chunk).argmax(1) for chunk in x.split(256)])
    return float((predictions == y).float().mean())


def train(model: nn.Module, digits: Digits, train_idx: np.ndarray, val_idx: np.ndarray) -> float:
    """Adam with a cosine schedule and random shifts; returns the final validation accuracy."""
    x = torch.from_numpy(digits.x)
    y = torch.from_numpy(digits.y)
    x_train, y_train = x[train_idx], y[train_idx]
    x_val, y_val = x[val_idx], y[val_idx]
    background = -digits.mean / digits.std
    generator = torch.Generator().manual_seed(TRAIN_SEED)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    steps_per_epoch = math.ceil(len(x_train) / BATCH_SIZE)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS * steps_per_epoch)
    for epoch in range(1, EPOCHS + 1):
        model.train()
        total_loss = 0.0
        for batch in torch.randperm(len(x_train), generator=generator).split(BATCH_SIZE):
            inputs = shift_batch(x_train[batch], background, generator)
            loss = F.cross_entropy(model(inputs), y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total_loss += loss.item() * len(batch)
        val_acc = accuracy(model, x_val, y_val)
        print(f"epoch {epoch:2d}  loss {total_loss / len(x_train):.4f}  val top-1 {val_acc:.4f}", flush=True)
    return accuracy(model, x_val, y_val)


# ---------------------------------------------------------------------------------------------
# Export and checks


def save_weights(model: nn.Module) -> None:
    from safetensors.torch import save_file

    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, str(WEIGHTS_PATH), metadata={"architecture": "digits_cnn.py:build_model"})
    WEIGHTS_PATH.chmod(0o644)  # safetensors creates the file owner-only; installs need it readable


def export_onnx(model: nn.Module, input_shape: tuple[int, ...]) -> None:
    example = torch.zeros(input_shape)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is chosen on purpose: it writes one self-contained file.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model.eval(),
            (example,),
            buffer,
            dynamo=False,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=17,
        )
    ONNX_PATH.write_bytes(buffer.getvalue())


def check_onnx(model: nn.Module, x: np.ndarray) -> float:
    """Validate the file and return its largest logit difference from torch on the given images."""
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(onnx.load(str(ONNX_PATH)), full_check=True)
    session = ort.InferenceSession(str(ONNX_PATH), providers=["CPUExecutionProvider"])
    ort_logits = session.run(["logits"], {"input": x})[0]
    with torch.no_grad():
        torch_logits = model.eval()(torch.from_numpy(x)).numpy()
    diff = float(np.abs(ort_logits - torch_logits).max())
    if diff >= ONNX_TOLERANCE:
        raise SystemExit(f"ONNX and torch logits differ by {diff:.2e} (limit {ONNX_TOLERANCE:.0e}).")
    return diff


def onnx_latency_ms(runs: int = 200) -> float:
    """Median batch-1 latency on one thread: the figure later optimisations are compared against."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(ONNX_PATH), options, providers=["CPUExecutionProvider"])
    feed = {"input": np.zeros((1, 1, IMAGE_SIZE, IMAGE_SIZE), np.float32)}
    for _ in range(20):
        session.run(None, feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


# ---------------------------------------------------------------------------------------------
# Card


@dataclass
class Facts:
    n_train: int
    n_val: int
    mean: float
    std: float
    val_accuracy: float
    train_seconds: float
    max_diff: float
    latency_ms: float
    params: int


def _size(path: Path) -> str:
    return f"{path.stat().st_size / 1024:.0f} KiB"


def write_card(facts: Facts) -> None:
    text = f"""# Demo assets: digits sample and digits CNN

Made by `python resources/demo/make_demo_assets.py` (seeded; re-run it to re-make every file here).
Nothing is downloaded: the images are scikit-learn's bundled `load_digits()` set.

## Files

| file | what | size |
| --- | --- | --- |
| `digits.npz` | the digits sample dataset: `x` float32 (N, 1, 28, 28), `y` int64 (N,), N = {facts.n_train + facts.n_val} | {_size(DATA_PATH)} |
| `digits_cnn.py` | the architecture: `build_model()`, `INPUT_SHAPE = (1, 1, 28, 28)` | {_size(HERE / "digits_cnn.py")} |
| `digits_cnn.safetensors` | trained weights (state_dict, eval-mode BatchNorm statistics included) | {_size(WEIGHTS_PATH)} |
| `digits_cnn.onnx` | the same model, opset 17, dynamic batch, input `input`, output `logits`, one file | {_size(ONNX_PATH)} |

## Data

- Source: scikit-learn `load_digits()`: 1,797 grey 8x8 images of the digits 0-9 (pixel values 0-16),
  kept in scikit-learn's order.
- Each image is scaled to 0..1 (divided by 16), upsampled to 28x28 (bilinear,
  `torch.nn.functional.interpolate`, `align_corners=False`), then normalised with the mean and
  standard deviation of all upsampled pixels of the whole set:
  **mean = {facts.mean:.6f}, std = {facts.std:.6f}** (`x = (pixel / 16 - mean) / std`).
- Values are rounded to float16 precision and stored as float32, so the file compresses well.

## Split

`order = numpy.random.default_rng(0).permutation(N)`; the first `round(N * 0.2)` indices of `order`
are validation ({facts.n_val} images), the rest are training ({facts.n_train} images). The studio's
data module splits datasets by the same rule (seed 0, validation fraction 0.2), so the shipped model
has never trained on the images the studio validates it on.

## Model

Conv(1→32)-BN-ReLU, Conv(32→64)-BN-ReLU, Conv(64→128)-BN-ReLU-MaxPool,
Conv(128→128)-BN-ReLU-MaxPool, global average pool, Linear(128→10). All convolutions 3x3, padding 1, no bias.
{facts.params:,} parameters, about 101 M multiply-adds per image: deliberately more compute than the
task needs, so that pruning and quantization show measurable speed-ups at batch 1.

## Training

Adam (lr {LEARNING_RATE}, weight decay {WEIGHT_DECAY}), cosine schedule to zero over {EPOCHS} epochs,
batch {BATCH_SIZE}, cross-entropy, random shifts of up to ±{MAX_SHIFT} pixels, seeds fixed (torch and numpy {TRAIN_SEED}),
CPU with {TRAIN_THREADS} threads: {facts.train_seconds:.0f} s on the machine that made these files.

## Results

- Validation top-1 accuracy: **{facts.val_accuracy * 100:.2f} %** ({round(facts.val_accuracy * facts.n_val)}/{facts.n_val}).
- ONNX Runtime vs torch logits on all images: max abs difference {facts.max_diff:.1e}.
- ONNX Runtime latency, batch 1, one thread, median of 200 runs: {facts.latency_ms:.2f} ms
  (on the machine that made these files; a 2-core AMD EPYC).
"""
    CARD_PATH.write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------------------------


def main() -> int:
    torch.manual_seed(TRAIN_SEED)
    np.random.seed(TRAIN_SEED)
    torch.set_num_threads(TRAIN_THREADS)
    digits = make_digits()
    save_digits(digits)
    print(
        f"wrote {DATA_PATH.name}: {DATA_PATH.stat().st_size / 1e6:.2f} MB, mean {digits.mean:.6f} std {digits.std:.6f}"
    )
    val_idx, train_idx = split_indices(len(digits.y))
    architecture = load_architecture()
    model = architecture.build_model()
    start = time.perf_counter()
    val_accuracy = train(model, digits, train_idx, val_idx)
    train_seconds = time.perf_counter() - start
    print(f"final validation top-1 {val_accuracy:.4f} after {train_seconds:.0f} s")
    model.eval()
    save_weights(model)
    export_onnx(model, architecture.INPUT_SHAPE)
    max_diff = check_onnx(model, digits.x)
    latency = onnx_latency_ms()
    print(f"ONNX check passed (max abs diff {max_diff:.1e}); batch-1 one-thread latency {latency:.2f} ms")
    facts = Facts(
        n_train=len(train_idx),
        n_val=len(val_idx),
        mean=digits.mean,
        std=digits.std,
        val_accuracy=val_accuracy,
        train_seconds=train_seconds,
        max_diff=max_diff,
        latency_ms=latency,
        params=sum(p.numel() for p in model.parameters()),
    )
    write_card(facts)
    for path in (DATA_PATH, WEIGHTS_PATH, ONNX_PATH, CARD_PATH):
        print(f"{path.name}: {path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
