"""Small helpers shared by the quantization tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studio.core.data import step_part


def onnx_ops(path: Path) -> set[str]:
    import onnx

    return {n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node}


def onnx_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    """The model's first output from ONNX Runtime on the CPU, as the expected value for the studio's."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def validation(dataset) -> tuple[np.ndarray, np.ndarray]:
    """The step's own validation split of a dataset spec (what a technique reports its figures on):
    inputs and labels."""
    split = step_part(dataset.load()).split("validation")
    return split.arrays["x"], split.labels


def top1(outputs: np.ndarray, labels: np.ndarray) -> float:
    return float((np.asarray(outputs).argmax(axis=1) == labels).mean())


def cancel_after(calls: int):
    """A cancel callback that says yes from its ``calls``-th question on."""
    asked = {"n": 0}

    def cancelled() -> bool:
        asked["n"] += 1
        return asked["n"] >= calls

    return cancelled
