"""A torch model's outputs: what it returns, and the layers that set the width of each output.

Pruning (which removes channels) and distillation's width student (a channel-pruned copy of its
teacher) both have to leave the model's interface as it was, and both ask the same two questions,
so the studio answers them once:

- **the outputs**: every tensor a forward pass returns (tuples, lists and dicts of them), in the
  order the studio's export and runner read them, each with its place ("output[1]",
  "output['boxes']") and its shape, and whether two shapes agree by the gate's rule;
- **the output layers**: the Conv and Linear layers whose channels are the outputs' width (the
  number of classes, of box coordinates, ...), which must keep every channel.

A classifier's last layer is the obvious output layer, but a real network has several outputs (a
class head and a box head on one trunk), and an output often leaves its layer through an
activation, a reshape or a sum. So the layers are found on the autograd graph of one forward
pass: walking back from every output, the first Conv or Linear layer met on each path made that
output's width, and a grouped (depthwise) convolution only passes on the width of its input, so
the walk marks it and goes on to the layer before.

Public through :mod:`studio.api`; like :mod:`studio._macs` this module imports nothing of the
studio, so the lowest layer can own it. It raises what the model raises: a technique turns that
into its own sentence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class OutputShape:
    """One tensor a model returns: its place in what is returned (or its name), and its shape."""

    label: str  # "output", "output[1]", "output['boxes']", or a declared output's name
    shape: tuple[int | str | None, ...]


def flatten_outputs(result: Any) -> list[Any]:
    """A forward pass's result as one flat list, in order, whatever tuples, lists and dicts hold it."""
    if isinstance(result, (tuple, list)):
        return [t for item in result for t in flatten_outputs(item)]
    if isinstance(result, Mapping):
        return [t for item in result.values() for t in flatten_outputs(item)]
    return [result]


def outputs_of(result: Any, label: str = "output") -> list[OutputShape]:
    """Every tensor of a forward pass's result, in order, with its place in the structure."""
    if isinstance(result, (tuple, list)):
        return [o for i, item in enumerate(result) for o in outputs_of(item, f"{label}[{i}]")]
    if isinstance(result, Mapping):
        return [o for key, item in result.items() for o in outputs_of(item, f"{label}[{key!r}]")]
    return [OutputShape(label, tuple(int(d) for d in getattr(result, "shape", ())))]


def run_outputs(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> list[OutputShape]:
    """The outputs of ``module`` on ``inputs``, run as the studio runs it (eval, no gradients)."""
    import torch

    if not is_program(module):  # a torch.export program refuses eval(): it is in inference form already
        module.eval()
    with torch.no_grad():
        return outputs_of(module(*inputs))


def is_program(module: torch.nn.Module) -> bool:
    """Whether ``module`` is the module of a torch.export program (a graph, not Python layers)."""
    import torch

    return isinstance(module, torch.fx.GraphModule) and hasattr(module, "range_constraints")


def shapes_match(shape: Sequence[int | str | None], reference: Sequence[int | str | None]) -> bool:
    """Whether two shapes agree as the studio's gate requires of a step's interface.

    Same rank, and the same size in every dimension after the first that both fix: the batch
    and symbolic (or ``-1``) sizes may differ.
    """
    return len(shape) == len(reference) and all(
        not (isinstance(a, int) and isinstance(b, int) and a > 0 and b > 0 and a != b)
        for a, b in zip(shape[1:], reference[1:], strict=True)
    )


def output_layers(
    module: torch.nn.Module, example: tuple, layers: Mapping[str, torch.nn.Module]
) -> list[str]:
    """Names of the ``layers`` whose output reaches a model output with no other of them between.

    Runs ``module`` once on ``example`` (eval mode, with gradients, frozen parameters unfrozen
    for the pass) and returns the names in the order the layers run. Without an autograd graph
    (a model that runs under no_grad, or returns integers), the layers whose result is returned
    as it is and the last one to run stand in for it.
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
            returned = flatten_outputs(module(*example))
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


def _walk(returned: list[Any], made_by: dict[Any, str], layers: Mapping[str, torch.nn.Module]) -> set[str]:
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
