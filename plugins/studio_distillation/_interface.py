"""The teacher's interface, which the student must share: every output, its place and its shape.

A student that gives the first output right but drops or narrows another (a box head beside a
class head) is a different model to whoever calls it, and the studio never records a version
whose interface changed; so the student is compared with the teacher on every output before
training, where a mismatch costs nothing yet (the studio's gate checks the saved student again).
The batch dimension is left out of the comparison: the two may be run on different numbers of
samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from studio.api import OutputShape, TensorSpec, first_line, shapes_match

if TYPE_CHECKING:
    import torch


def outputs_of_specs(specs: Sequence[TensorSpec], samples: int) -> list[OutputShape]:
    """A model's declared outputs (ONNX, or a converted PyTorch file), its free batch set to ``samples``."""
    return [
        OutputShape(
            s.name, tuple(samples if i == 0 and not isinstance(d, int) else d for i, d in enumerate(s.shape))
        )
        for s in specs
    ]


def mismatch(got: list[OutputShape], reference: list[OutputShape], *, by_place: bool) -> str | None:
    """One sentence naming how the student's outputs differ from the teacher's, or None.

    ``by_place`` compares where each output sits (tuple index, dict key): meaningful when both
    are PyTorch modules; an ONNX teacher's outputs are names the student cannot share.
    """
    if len(got) != len(reference):
        return f"the student gives {_count(len(got))} but the teacher gives {_count(len(reference))}"
    for new, old in zip(got, reference, strict=True):
        if by_place and new.label != old.label:
            return f"the student returns {new.label} where the teacher returns {old.label}"
        if not shapes_match(new.shape, old.shape):
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
