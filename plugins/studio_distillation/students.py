"""Making the student: a channel-pruned copy of the teacher, or a model the user names.

A width-reduced copy keeps the teacher's strongest channels (ranked by weight magnitude), so it
starts close to the teacher and distillation mostly repairs what pruning took away; that is
faster and more accurate than training the same shape from scratch, which stays available for
comparison (``student_init="random"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from studio.api import ParameterError, TensorSpec, first_line, flatten_outputs, module_macs, shapes_match
from studio.api import output_layers as find_output_layers

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Cost:
    """What a torch module costs: parameters and the multiply-adds of its Conv/Linear layers."""

    params: int
    macs: int | None  # None where a shape the count needs is unknown (an ONNX teacher's symbolic dims)


def width_student(
    teacher: torch.nn.Module, example: tuple[torch.Tensor, ...], width: float
) -> torch.nn.Module:
    """Prune ``teacher`` in place to ``width`` of its channels per layer and return it.

    The layers that set the width of the model's outputs keep every channel: their width is the
    number of classes (or of box coordinates, ...), which the student must share with the teacher.
    """
    import torch_pruning as tp

    try:
        ignored = output_layers(teacher, example)
    except Exception as exc:
        raise _not_narrowed(exc) from None
    check_width(teacher, ignored, width)
    try:
        pruner = tp.pruner.MetaPruner(
            teacher,
            example,
            importance=tp.importance.GroupMagnitudeImportance(p=2),
            pruning_ratio=1.0 - width,
            ignored_layers=ignored,
        )
        pruner.step()
    except Exception as exc:
        raise _not_narrowed(exc) from None
    return teacher


def _not_narrowed(exc: BaseException) -> ParameterError:
    return ParameterError(
        f"the teacher could not be narrowed by channel pruning ({first_line(exc)}); "
        "give a student with student='version' and student_ref"
    )


def check_width(module: torch.nn.Module, ignored: Sequence[torch.nn.Module], width: float) -> None:
    """Refuse a width that would leave a layer with no channel (the pruner would then skip it)."""
    skip = {id(m) for m in ignored}
    widths = [_out_channels(m) for m in module.modules() if _is_prunable(m) and id(m) not in skip]
    if not widths:
        raise ParameterError(
            "the teacher has no Conv or Linear layer to narrow; give a student with student='version'"
        )
    narrowest = min(widths)
    if int(narrowest * width) < 1:
        raise ParameterError(
            f"width {width:g} would leave no channel in a layer of {narrowest}; "
            f"use a width of at least {1 / narrowest:.3g}"
        )


def reinitialise(module: torch.nn.Module, seed: int) -> None:
    """Fresh random weights in the same shapes: the baseline that shows what the pruned start buys."""
    import torch

    torch.manual_seed(seed)
    for layer in module.modules():
        reset = getattr(layer, "reset_parameters", None)
        if callable(reset):
            reset()
        if hasattr(layer, "reset_running_stats"):
            layer.reset_running_stats()


def output_layers(module: torch.nn.Module, example: tuple[torch.Tensor, ...]) -> list[torch.nn.Module]:
    """The Conv/Linear layers that set the width of any of the model's outputs, in the order they run."""
    layers = {name: m for name, m in module.named_modules() if _is_prunable(m)}
    return [layers[name] for name in find_output_layers(module, example, layers)]


def cost(module: torch.nn.Module, example: tuple[torch.Tensor, ...]) -> Cost:
    """Parameters and per-sample multiply-adds, counted the same way for teacher and student.

    The MACs come from the studio's counter, whose rules also count an ONNX teacher's graph, so
    the ratio holds whichever kind the teacher is.
    """
    return Cost(params=sum(p.numel() for p in module.parameters()), macs=module_macs(module, example))


def first_output(result: object) -> torch.Tensor:
    """The tensor that stands for the model's output, as the studio's evaluation reads it."""
    return flatten_outputs(result)[0]


def input_mismatch(teacher: Sequence[TensorSpec], student: Sequence[TensorSpec]) -> str | None:
    """One sentence naming how the student's declared inputs differ from the teacher's, or None."""
    if len(teacher) != len(student):
        return f"the student takes {len(student)} inputs but the teacher takes {len(teacher)}"
    for t, s in zip(teacher, student, strict=True):
        if not shapes_match(s.shape, t.shape):
            return (
                f"the student takes input of shape {_shape(s.shape)} "
                f"but the teacher gives it {_shape(t.shape)}"
            )
        if t.dtype != s.dtype:
            return f"the student takes {s.dtype} input but the teacher takes {t.dtype}"
    return None


def _is_prunable(module: torch.nn.Module) -> bool:
    """Layers whose output channels can be narrowed and whose multiply-adds dominate the cost."""
    from torch import nn

    return isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))


def _out_channels(module: torch.nn.Module) -> int:
    return int(module.weight.shape[0])


def _shape(shape: Sequence) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"
