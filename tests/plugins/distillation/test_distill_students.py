"""How students are made and measured, on real modules."""

from __future__ import annotations

import copy

import pytest
import torch
from studio_distillation._interface import failure, mismatch
from studio_distillation.students import cost, input_mismatch, output_layers, reinitialise, width_student

from studio.api import OutputShape, ParameterError, TensorSpec, run_outputs
from studio.core.graph import inspect_model
from studio.core.models import load_torch_module

EXAMPLE = (torch.zeros(2, 1, 28, 28),)


def test_output_layer_is_the_classifier(teacher):
    module = load_torch_module(teacher, trusted=True)
    assert output_layers(module, EXAMPLE) == [module[9]]


def test_width_student_is_a_pruned_copy_with_the_same_classes(teacher):
    module = load_torch_module(teacher, trusted=True)
    filters = module[0].weight.detach().flatten(1)
    student = width_student(copy.deepcopy(module), EXAMPLE, 0.5)
    assert student[0].out_channels == 8 and student[4].out_channels == 16
    assert student[9].out_features == 10
    # every kept filter is one of the teacher's, unchanged: pruning removes, never retrains
    for kept in student[0].weight.detach().flatten(1):
        assert (filters == kept).all(dim=1).any()


def test_width_student_refuses_an_empty_layer(teacher):
    module = load_torch_module(teacher, trusted=True)
    with pytest.raises(ParameterError, match="no channel in a layer of 16"):
        width_student(module, EXAMPLE, 0.06)


def test_macs_match_the_studio_graph(teacher):
    module = load_torch_module(teacher, trusted=True)
    counted = cost(module, (torch.zeros(1, 1, 28, 28),))
    info = inspect_model(teacher, trusted=True)
    assert counted.macs == info.macs
    assert counted.params == info.params


def test_reinitialise_changes_every_learned_layer(teacher):
    module = load_torch_module(teacher, trusted=True)
    before = copy.deepcopy(module.state_dict())
    reinitialise(module, seed=0)
    after = module.state_dict()
    assert not torch.equal(before["0.weight"], after["0.weight"])
    assert not torch.equal(before["9.weight"], after["9.weight"])
    assert torch.equal(after["1.running_mean"], torch.zeros(16))


def test_mismatches_are_one_sentence(teacher):
    module = load_torch_module(teacher, trusted=True)
    got = run_outputs(module, EXAMPLE)
    assert mismatch(got, [OutputShape("output", (2, 10))], by_place=True) is None
    assert mismatch(got, [OutputShape("output", (2, 7))], by_place=True) == (
        "the student gives outputs of shape (2, 10) but the teacher gives (2, 7)"
    )
    two = [OutputShape("output[0]", (2, 10)), OutputShape("output[1]", (2, 4))]
    assert mismatch(got, two, by_place=True) == "the student gives 1 output but the teacher gives 2 outputs"
    colour = (torch.zeros(2, 3, 28, 28),)
    with pytest.raises(RuntimeError) as caught:
        run_outputs(module, colour)
    wrong = failure(colour, caught.value)
    assert wrong.startswith("the student fails on the teacher's input of shape (2, 3, 28, 28):")
    t = [TensorSpec("input", ("batch", 1, 28, 28), "float32")]
    assert input_mismatch(t, [TensorSpec("x", ("batch", 1, 28, 28), "float32")]) is None
    assert input_mismatch(t, [TensorSpec("x", ("batch", 1, 28, 28), "int64")]) == (
        "the student takes int64 input but the teacher takes float32"
    )
    assert input_mismatch(t, t + t) == "the student takes 2 inputs but the teacher takes 1"
