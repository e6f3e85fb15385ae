"""An ONNX file that parses but cannot run is refused at import, in one sentence, with nothing recorded."""

from __future__ import annotations

import re
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from studio.core.resources import resource


def _model(nodes: list, *, output_shape: list[int]) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape)
    return helper.make_model(
        helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)]
    )


CASES = {
    "cycle": (
        _model(
            [
                helper.make_node("Add", ["x", "b"], ["a"]),
                helper.make_node("Relu", ["a"], ["b"]),
                helper.make_node("Relu", ["b"], ["y"]),
            ],
            output_shape=[1, 4],
        ),
        r"its nodes form a cycle or are out of order \(Add #0 reads 'b' before it is made\)",
    ),
    "dangling input": (
        _model([helper.make_node("Add", ["x", "nowhere"], ["y"])], output_shape=[1, 4]),
        r"Add #0 reads 'nowhere', which nothing produces",
    ),
    "contradicting shapes": (
        _model([helper.make_node("Relu", ["x"], ["y"])], output_shape=[1, 5]),
        r"its declared shapes contradict its operators \(.*differ.*\)",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_unrunnable_graph_is_refused_at_import(studio_cli, tmp_path: Path, case: str) -> None:
    model, message = CASES[case]
    path = tmp_path / "broken.onnx"
    onnx.save_model(model, str(path))
    project = tmp_path / "p"

    result = studio_cli("import", path, "--project", project)

    assert result.returncode == 2
    (sentence,) = result.stderr.strip().splitlines()
    assert sentence.startswith("studio: error: broken.onnx is not a valid ONNX model: ")
    assert re.search(message, sentence), sentence
    assert not project.exists() or not list((project / "artifacts").glob("*/*"))


def test_the_demo_model_is_a_valid_graph(studio_cli, tmp_path: Path) -> None:
    result = studio_cli("import", resource("demo", "digits_cnn.onnx"), "--project", tmp_path / "p")
    assert result.returncode == 0, result.stderr
