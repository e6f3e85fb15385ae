"""The teacher's interface, which the student must share: every output, its place and its shape.

A student that gives the first output right but drops or narrows another (a box head beside a
class head) is a different model to whoever calls it, and the studio never records a version
whose interface changed; so the student is compared with the teacher on every output, before
training and once more before it is saved. The batch dimension is left out of the comparison:
the two may be run on different numbers of samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from studio.api import TensorSpec, first_line

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Output:
    """One tensor a model returns: its place in what is returned (or its name), and its shape."""

    label: str  # "output", "output[1]", "output['boxes']", or an ONNX output's name
    shape: tuple[int | str | None, ...]


def outputs_of(result: Any, label: str = "output") -> list[Output]:
    """Every tensor of a forward pass's result, in order, with its place in the structure."""
    if isinstance(result, (tuple, list)):
        return [o for i, item in enumerate(result) for o in outputs_of(item, f"{label}[{i}]")]
    if isinstance(result, dict):
        return [o for key, item in result.items() for o in outputs_of(item, f"{label}[{key!r}]")]
    return [Output(label, tuple(int(d) for d in getattr(result, "shape", ())))]


def outputs_of_specs(specs: Sequence[TensorSpec], samples: int) -> list[Output]:
    """A model's declared outputs (ONNX, or a converted PyTorch file), its free batch set to ``samples``."""
    return [
        Output(
            s.name, tuple(samples if i == 0 and not isinstance(d, int) else d for i, d in enumerate(s.shape))
        )
        for s in specs
    ]


def run_outputs(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> list[Output]:
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


def mismatch(got: list[Output], reference: list[Output], *, by_place: bool) -> str | None:
    """One sentence naming how the student's outputs differ from the teacher's, or None.

    ``by_place`` compares where each output sits (tuple index, dict key): meaningful when both
    are PyTorch modules; an ONNX teacher's outputs are names the student cannot share.
    """
    if len(got) != len(reference):
        return f"the student gives {_count(len(got))} but the teacher gives {_count(len(reference))}"
    for new, old in zip(got, reference, strict=True):
        if by_place and new.label != old.label:
            return f"the student returns {new.label} where the teacher returns {old.label}"
        if len(new.shape) != len(old.shape) or any(
            isinstance(a, int) and isinstance(b, int) and a != b
            for a, b in zip(new.shape[1:], old.shape[1:], strict=True)
        ):
            which = "outputs" if len(reference) == 1 else f"{old.label}"
            return f"the student gives {which} of shape {_shape(new.shape)} but the teacher gives {_shape(old.shape)}"
    return None


def failure(
    inputs: tuple[torch.Tensor, ...],
    exc: BaseException,
    what: str = "the student fails on the teacher's input",
) -> str:
    """The sentence for a model that cannot run on the given input at all."""
    return f"{what} of shape {_shape(tuple(inputs[0].shape))}: {first_line(exc)}"


def _count(n: int) -> str:
    return f"{n} output{'s' if n != 1 else ''}"


def _shape(shape: Sequence) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"
