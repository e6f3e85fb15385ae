"""The studio's one answer to "what does the model return" and "which layers set its width"."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from studio.api import OutputShape, flatten_outputs, output_layers, outputs_of, run_outputs, shapes_match


class TwoHeads(nn.Module):
    """A trunk ending in a depthwise conv, a class head through an activation, a box head reshaped."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.cls = nn.Linear(8, 2)
        self.box = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.depthwise(self.stem(x)).mean((2, 3))
        return {"scores": torch.softmax(self.cls(features), 1), "boxes": self.box(features).view(-1, 2, 2)}


class DepthwiseOut(nn.Module):
    """An output that leaves a depthwise conv: its width is the layer's before it."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 1)
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.depthwise(self.stem(x))


class NoGrad(nn.Module):
    """A model that runs under no_grad: no autograd graph to walk."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.last = nn.Linear(4, 4), nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            hidden = self.first(x)
            return hidden, self.last(hidden).relu()


def _dense(module: nn.Module) -> dict[str, nn.Module]:
    return {n: m for n, m in module.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


def test_output_layers_are_the_heads_in_the_order_they_run() -> None:
    model = TwoHeads()
    assert output_layers(model, (torch.randn(1, 3, 8, 8),), _dense(model)) == ["cls", "box"]


def test_a_depthwise_conv_passes_on_the_width_of_the_layer_before() -> None:
    model = DepthwiseOut()
    assert output_layers(model, (torch.randn(1, 3, 8, 8),), _dense(model)) == ["stem", "depthwise"]


def test_frozen_layers_are_found_and_stay_frozen() -> None:
    model = TwoHeads()
    model.requires_grad_(False)
    assert output_layers(model, (torch.randn(1, 3, 8, 8),), _dense(model)) == ["cls", "box"]
    assert not any(p.requires_grad for p in model.parameters())


def test_without_a_graph_the_returned_layers_and_the_last_one_stand_in() -> None:
    model = NoGrad()
    assert output_layers(model, (torch.randn(2, 4),), _dense(model)) == ["first", "last"]


def test_a_failing_model_raises_its_own_error_and_leaves_no_hook() -> None:
    model = TwoHeads()
    with pytest.raises(RuntimeError):
        output_layers(model, (torch.randn(1, 5, 8, 8),), _dense(model))
    assert not any(m._forward_hooks for m in model.modules())


def test_outputs_have_their_place_and_shape_in_export_order() -> None:
    model = TwoHeads()
    result = model(torch.randn(3, 3, 8, 8))
    assert [tuple(t.shape) for t in flatten_outputs(result)] == [(3, 2), (3, 2, 2)]
    assert outputs_of(result) == [
        OutputShape("output['scores']", (3, 2)),
        OutputShape("output['boxes']", (3, 2, 2)),
    ]
    assert outputs_of((result["scores"], [result["boxes"]])) == [
        OutputShape("output[0]", (3, 2)),
        OutputShape("output[1][0]", (3, 2, 2)),
    ]
    model.train()
    assert run_outputs(model, (torch.randn(1, 3, 8, 8),))[0] == OutputShape("output['scores']", (1, 2))
    assert not model.training


def test_shapes_match_by_the_gates_rule() -> None:
    assert shapes_match((1, 10), (64, 10))  # the batch may differ
    assert shapes_match(("batch", 10), (1, "n"))  # so may symbolic sizes
    assert shapes_match((1, 10), (1, -1))  # and "any size"
    assert not shapes_match((1, 10), (1, 7))
    assert not shapes_match((1, 10), (1, 10, 1))
