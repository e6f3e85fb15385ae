"""Small helpers shared by the quantization tests."""

from __future__ import annotations

from pathlib import Path


def onnx_ops(path: Path) -> set[str]:
    import onnx

    return {n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node}


def cancel_after(calls: int):
    """A cancel callback that says yes from its ``calls``-th question on."""
    asked = {"n": 0}

    def cancelled() -> bool:
        asked["n"] += 1
        return asked["n"] >= calls

    return cancelled
