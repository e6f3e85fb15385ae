"""Scores: accuracy against labels, and fidelity of one model version to another.

Fidelity needs no labels, which is why it is the first check after quantization: an int8 model
that agrees with its float parent on every sample has lost nothing, whatever the labels say.
Judge it on ``cosine_min``: a mean hides the few samples a quantized model gets badly wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from studio.api import DatasetError, StudioError
from studio.core.data import iter_batches
from studio.core.models import TensorSpec

if TYPE_CHECKING:
    from studio.core.runtime import Runner


def predict(runner: Runner, feeds: dict[str, np.ndarray], *, batch_size: int = 64) -> np.ndarray:
    """The model's first output for every sample, in order.

    A model exported with a fixed batch size only accepts that many samples per run, so the
    last short batch is padded with copies of its last sample and the padding cut off again.
    """
    fixed = fixed_batch(runner.inputs)
    size = fixed or batch_size
    parts = []
    for batch in iter_batches(feeds, size):
        n = len(next(iter(batch.values())))
        if fixed and n < fixed:
            pad = np.minimum(np.arange(fixed), n - 1)
            batch = {k: v[pad] for k, v in batch.items()}
        parts.append(np.asarray(runner.run(batch)[0])[:n])
    if not parts:
        raise DatasetError("there are no samples to run the model on")
    return np.concatenate(parts, axis=0)


def fixed_batch(inputs: Sequence[TensorSpec]) -> int | None:
    """The batch size a model was exported with, or None when it takes any batch."""
    for spec in inputs:
        if spec.shape and isinstance(spec.shape[0], int) and spec.shape[0] > 0:
            return spec.shape[0]
    return None


def accuracy(outputs: np.ndarray, labels: np.ndarray, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Top-k accuracy as fractions; a k that is not below the number of classes is left out,
    since it would be 1.0 by construction (top-1 is always reported)."""
    scores = _per_sample(outputs)
    labels = np.asarray(labels)
    if len(labels) != len(scores):
        raise DatasetError(f"the model gave {len(scores)} outputs for {len(labels)} labels")
    classes = scores.shape[1]
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        bad = int(labels.max() if labels.max() >= classes else labels.min())
        raise DatasetError(
            f"label {bad} is out of range: the model's output has {classes} classes (0 to {classes - 1})"
        )
    result = {}
    for k in ks:
        if k < 1 or (k > 1 and k >= classes):
            continue
        if k == 1:
            hits = scores.argmax(axis=1) == labels
        else:
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            hits = (top == labels[:, None]).any(axis=1)
        result[f"top{k}"] = float(hits.mean()) if len(hits) else 0.0
    return result


def fidelity(outputs: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """How closely ``outputs`` follow ``reference``, sample by sample.

    Cosine is computed on each sample's flattened output; argmax agreement along the last axis
    (the class, or the token at every position for sequence outputs).
    """
    outputs, reference = np.asarray(outputs), np.asarray(reference)
    if outputs.shape != reference.shape:
        raise StudioError(
            f"the outputs have shape {outputs.shape} but the reference's have {reference.shape}; "
            "they cannot be compared"
        )
    if outputs.size == 0:
        raise StudioError("there are no outputs to compare with the reference")
    a, b = _per_sample(outputs).astype(np.float64), _per_sample(reference).astype(np.float64)
    cosine = _cosine(a, b)
    agreement = outputs.argmax(axis=-1) == reference.argmax(axis=-1)
    return {
        "cosine_mean": float(cosine.mean()),
        "cosine_min": float(cosine.min()),
        "argmax_agreement": float(np.mean(agreement)),
        "max_abs_error": float(np.max(np.abs(a - b))),
    }


def _per_sample(outputs: np.ndarray) -> np.ndarray:
    outputs = np.asarray(outputs)
    if outputs.ndim == 0:
        raise StudioError("the model's output is a single number, not one row per sample")
    return outputs.reshape(len(outputs), -1)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine; two all-zero rows count as identical, one all-zero row as unrelated."""
    dot = np.einsum("ij,ij->i", a, b)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    both_zero = ~a.any(axis=1) & ~b.any(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = np.where(norms > 0, dot / np.where(norms > 0, norms, 1.0), 0.0)
    return np.where(both_zero, 1.0, np.clip(cosine, -1.0, 1.0))
