"""Every model of the corpus, imported as a user imports it, has the parameter and MAC counts that
the corpus found without the studio, or says it cannot know them: never 0, never negative.

The corpus (``tests/model_corpus.py``) holds the shapes real third-party models have: weights in
Constant nodes, inside If branches or made by ConstantOfShape, a batch declared as -1, padding
worked out from the input's size at run time. Its counts come from the torch modules (``numel``,
forward hooks) or from the arrays it wrote; ``tests/benchmarks/bench_corpus.py --counts-only``
prints the same comparison as a table.
"""

from __future__ import annotations

import onnx
import pytest
from model_corpus import CORPUS, Made, count_problem

from studio.core.models import count_parameters
from studio.project import Project
from studio.versions import check_model_file


@pytest.fixture
def built(corpus_models) -> dict[str, Made]:
    return corpus_models


@pytest.mark.parametrize("name", list(CORPUS))
def test_imported_counts_agree_with_the_independent_ones(built, name, tmp_path):
    made = built[name]
    assert made.params is not None and made.macs is not None  # every entry knows its truth
    with Project.create(tmp_path / "project") as project:
        version = made.import_into(project, at_sample_size=True)
    assert count_problem(version.params, made.params) is None, f"parameters: {version.params}"
    assert count_problem(version.macs, made.macs) is None, f"MACs: {version.macs}"
    assert version.params is not None  # parameters never depend on a size: always known


@pytest.mark.parametrize("name", list(CORPUS))
def test_without_the_size_counts_are_known_or_unknown_never_zero_or_negative(built, name):
    """As the technique matrix imports: only the shape a format cannot record is given."""
    made = built[name]
    shapes = None if made.input_shape is None else [made.input_shape]
    info = check_model_file(
        made.model, weights=made.weights, trust=True, input_shapes=shapes, input_roles=made.input_roles
    ).info
    assert info.params == made.params
    assert info.macs is None or info.macs > 0
    assert all(layer.macs is None or layer.macs >= 0 for layer in info.layers)


TORCH_FILES = ("two heads (architecture .py)", "TorchScript CNN", "torch.export program (.pt2)")


@pytest.mark.parametrize("name", [n for n in CORPUS if n not in TORCH_FILES])
def test_count_parameters_of_an_onnx_file_uses_the_layer_tables_rule(built, name):
    """One rule: counting an ONNX model's parameters directly gives what the import recorded."""
    made = built[name]
    assert count_parameters(onnx.load(str(made.model))) == made.params
