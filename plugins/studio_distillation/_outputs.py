"""The layers that set the width of the teacher's outputs: a width student keeps all their channels.

A classifier's last layer is the obvious one, but a real network has several outputs (a class
head and a box head on one trunk), and an output often leaves its layer through an activation,
a reshape or a sum. So the layers are found on the autograd graph of one forward pass: walking
back from every output, the first Conv or Linear layer met on each path made that output's
width, and a grouped (depthwise) convolution only passes on the width of its input, so the walk
marks it and goes on to the layer before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from studio.api import ParameterError, first_line

if TYPE_CHECKING:
    import torch


def output_layers(module: torch.nn.Module, example: tuple, layers: dict[str, torch.nn.Module]) -> list[str]:
    """Names of the ``layers`` whose output reaches a model output with no other of them between.

    Without an autograd graph (a model that runs under no_grad, or returns integers), the
    layers whose result is returned as it is and the last one to run stand in for it.
    """
    import torch

    made_by: dict[Any, str] = {}  # grad_fn of a layer's result -> the layer's name
    returned_by: dict[str, Any] = {}  # a layer's last result, to spot one returned as it is
    order: list[str] = []

    def recorder(name: str):
        def hook(_layer, _inputs, output) -> None:
            order.append(name)
            returned_by[name] = output
            node = getattr(output, "grad_fn", None)
            if node is not None:
                made_by[node] = name

        return hook

    hooks = [layer.register_forward_hook(recorder(name)) for name, layer in layers.items()]
    frozen = [p for p in module.parameters() if not p.requires_grad]
    try:
        for p in frozen:  # a frozen layer makes no autograd node to find it by
            p.requires_grad_(True)
        with torch.enable_grad():
            module.eval()
            returned = flatten(module(*example))
    except Exception as exc:
        raise ParameterError(
            f"the model fails on an input of its declared shape: {first_line(exc)}"
        ) from None
    finally:
        for hook in hooks:
            hook.remove()
        for p in frozen:
            p.requires_grad_(False)
    found = _walk(returned, made_by, layers)
    if found or not order:
        return [name for name in dict.fromkeys(order) if name in found]
    chosen = [name for name, out in returned_by.items() if any(out is r for r in returned)]
    return chosen if order[-1] in chosen else [*chosen, order[-1]]


def _walk(returned: list[Any], made_by: dict[Any, str], layers: dict[str, torch.nn.Module]) -> set[str]:
    found: set[str] = set()
    seen: set[Any] = set()
    stack = [getattr(t, "grad_fn", None) for t in returned]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        name = made_by.get(node)
        if name is not None:
            found.add(name)
            if getattr(layers[name], "groups", 1) == 1:
                continue  # this layer sets the width; what comes before it does not reach the output
        stack.extend(child for child, _ in node.next_functions)
    return found


def flatten(result: Any) -> list[Any]:
    """Every leaf of a forward pass's result (tuples, lists and dicts of tensors)."""
    if isinstance(result, (tuple, list)):
        return [t for item in result for t in flatten(item)]
    if isinstance(result, dict):
        return [t for item in result.values() for t in flatten(item)]
    return [result]
