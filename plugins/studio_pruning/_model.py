"""What the input model is, as far as pruning cares: a form pruning can change, the batch it
takes, and the outputs a pruned copy must still give.

Pruning edits Python modules (Conv2d, Linear) and saves the result next to the model's
architecture file, so a model that arrives as a compiled graph is refused before any work. A
model that only runs on a fixed batch is fed exactly that batch everywhere: by its declared
input, or, for a model whose code fixes it (``x.view(1, -1)``), by one probe at batch 2. The
outputs of the input model on one sample are the interface every result must keep.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from studio.api import Context, OutputShape, ParameterError, first_line, is_program, run_outputs, shapes_match

if TYPE_CHECKING:
    import torch

PROBE_BATCH = 2  # the smallest batch that tells a model that takes any batch from one that takes one


# -- forms that pruning cannot change ----------------------------------------------------------------


def refuse_compiled(ctx: Context, module: torch.nn.Module, technique: str) -> None:
    """Refuse a TorchScript archive, a torch.export program or a pickled module, in one sentence.

    The first two carry a graph of tensor operations, not the Conv and Linear modules that
    pruning edits (a TorchScript archive's layers are compiled, a torch.export program's
    weights are plain attributes of its graph); a pickled module could be pruned, but the
    result can only be saved next to an architecture file, so the run would fail at its end.
    """
    import torch

    advice = "import the architecture file (.py with build_model()) and its weights instead"
    if isinstance(module, torch.jit.ScriptModule):
        carries = "a TorchScript archive carries only its compiled graph"
    elif is_program(module):
        carries = "a torch.export program (.pt2) carries only its graph"
    elif _pickled(ctx.model.path):
        raise ParameterError(
            f"{technique} saves its result next to the model's architecture file, and "
            f"{ctx.model.path.name} is a pickled module without one: {advice}"
        )
    else:
        return
    raise ParameterError(f"{technique} needs the model's Python modules; {carries}: {advice}")


def _pickled(path: Path) -> bool:
    """Whether the model file is a torch.save archive or a bare pickle, not Python source."""
    with open(path, "rb") as f:
        head = f.read(4)
    return head.startswith((b"PK\x03\x04", b"\x80"))


# -- the batch ---------------------------------------------------------------------------------------


def fixed_batch(ctx: Context, module: torch.nn.Module) -> int | None:
    """The one batch size the model takes, or None when it takes any.

    Inputs declared with a number for their first dimension fix the batch (only when none is
    named "batch": a recurrent state's leading dimension says nothing about it); otherwise one
    forward pass at batch 2 finds a model whose code fixes it (``x.view(1, -1)``), so that
    evaluation and fine-tuning feed it what it takes instead of failing halfway through the run.
    Asked only when there is a dataset to feed: the declared inputs are read then anyway.
    """
    import torch

    leading = [spec.shape[0] if spec.shape else None for spec in ctx.model.inputs]
    if leading and all(isinstance(d, int) and d > 0 for d in leading):
        return int(leading[0])
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    try:
        with torch.no_grad():
            module.eval()
            module(*(t.to(device) for t in ctx.model.example_inputs(PROBE_BATCH)))
    except Exception:
        return 1
    return None


# -- the interface a result must keep ----------------------------------------------------------------


def check_interface(
    module: torch.nn.Module, example: tuple, reference: list[OutputShape], what: str, advice: str
) -> None:
    """Refuse a result whose outputs differ from the input model's in number, place, rank or size.

    The studio's gate refuses such a result too, but only once the run is over; checking right
    after pruning, before any fine-tuning, turns it into one sentence that names the output and
    what to change.
    """
    try:
        got = run_outputs(module, example)
    except Exception as exc:
        raise ParameterError(
            f"the {what} fails on the input model's input: {first_line(exc)}; {advice}"
        ) from None
    if [o.label for o in got] != [o.label for o in reference]:
        raise ParameterError(
            f"the {what} returns {_labels(got)} but the input model returns {_labels(reference)}; {advice}"
        )
    for new, old in zip(got, reference, strict=True):
        if not shapes_match(new.shape, old.shape):
            raise ParameterError(
                f"the {what} gives {new.label} of shape {_shape(new.shape)} where the input model gives "
                f"{_shape(old.shape)}; {advice}"
            )


def _labels(outputs: list[OutputShape]) -> str:
    return ", ".join(o.label for o in outputs) or "nothing"


def _shape(shape: tuple[int | str | None, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"
