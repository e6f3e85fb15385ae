"""Two PyTorch → ONNX conversions at once (the window converts the two graphs of a comparison on two
background threads): each file is its own model, and the process keeps its stdout."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import onnx

from studio.core.models import collect_files
from studio.core.resources import resource
from studio.core.torch_export import export_torch_files


def test_conversions_on_two_threads_keep_stdout_and_their_own_models(tmp_path: Path) -> None:
    demo = collect_files(resource("demo", "digits_cnn.py"), resource("demo", "digits_cnn.safetensors"))
    stdout = sys.stdout
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def convert(folder: Path) -> None:
        start.wait()
        try:
            export_torch_files(demo, folder / "model.onnx", trusted=True)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    for round_ in range(3):
        threads = [threading.Thread(target=convert, args=(tmp_path / f"{round_}-{i}",)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
    assert sys.stdout is stdout  # not a buffer one conversion swapped in and the other put back
    for model in tmp_path.glob("*/model.onnx"):
        onnx.checker.check_model(onnx.load(str(model)))
    assert len(list(tmp_path.glob("*/model.onnx"))) == 6
