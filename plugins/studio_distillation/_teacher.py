"""The teacher and student as distillation feeds them: how each is run, which batch each takes,
and the outputs the student must give to stand in for the teacher.

A PyTorch teacher is run as the module it is (a torch.export program's module as it was
exported: it refuses eval mode); an ONNX teacher is run by the studio, which feeds a fixed-batch
model that many samples per run by itself. A model whose batch is fixed, by its declared input
or by its code (``x.view(1, -1)``), is found by running it once on two real samples: it is then
fed exactly its batch everywhere, never a larger one.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from studio.api import Context, OutputShape, ParameterError, is_program, run_outputs

from ._interface import failure, mismatch, outputs_of_specs

if TYPE_CHECKING:
    import torch

PROBE_SAMPLES = 2  # samples run through teacher and student to check they fit and take a free batch


@dataclass(frozen=True)
class Teacher:
    """How the teacher is run and what it gives on the probe samples."""

    module: torch.nn.Module | None  # None: an ONNX model, run by the studio
    batch: int | None  # the one batch size it takes, when it takes one
    outputs: list[OutputShape]  # every output, with its place (a module) or its name (declared)

    @property
    def from_module(self) -> bool:
        return self.module is not None

    @property
    def layers(self) -> torch.nn.Module | None:
        """The module as Python layers, whose cost can be counted; None for ONNX and torch.export."""
        return None if self.module is None or is_program(self.module) else self.module

    def classes(self) -> int | None:
        """The width of a (samples, classes) first output: what labels must stay below."""
        shape = self.outputs[0].shape if self.outputs else ()
        return shape[1] if len(shape) == 2 and isinstance(shape[1], int) else None


def declared_batch(ctx: Context) -> int | None:
    """The batch every input of the teacher declares, or None when any is free ("batch")."""
    leading = [spec.shape[0] if spec.shape else None for spec in ctx.model.inputs]
    if leading and all(isinstance(d, int) and d > 0 for d in leading):
        return int(leading[0])
    return None


def probe_feeds(ctx: Context) -> dict[str, np.ndarray]:
    """The first samples of the train split: two, or the teacher's fixed batch if it is larger."""
    n = max(PROBE_SAMPLES, declared_batch(ctx) or 0)
    return {k: v[:n] for k, v in ctx.dataset("train").feeds().items()}


def as_tensors(feeds: dict[str, np.ndarray], n: int | None = None) -> tuple[torch.Tensor, ...]:
    import torch

    return tuple(torch.from_numpy(np.ascontiguousarray(v[:n])) for v in feeds.values())


def read_teacher(ctx: Context, probe: dict[str, np.ndarray]) -> Teacher:
    """Load the teacher, find the batch it takes, and its outputs on the probe samples."""
    declared = declared_batch(ctx)
    module = _module(ctx)
    if module is None:
        samples = declared or len(next(iter(probe.values())))
        return Teacher(None, declared, outputs_of_specs(ctx.model.outputs, samples))
    batch, outputs = _run_at_its_batch(
        module, probe, declared, "the teacher fails on the dataset's samples", "check the dataset's shapes"
    )
    return Teacher(module, batch, outputs)


def student_batch(student: torch.nn.Module, probe: dict[str, np.ndarray], teacher: Teacher) -> int | None:
    """The batch the student takes, after checking it gives every output the teacher gives."""
    fit = "a student must take the teacher's input and give its output"
    batch, outputs = _run_at_its_batch(student, probe, None, "the student fails on the teacher's input", fit)
    problem = mismatch(outputs, teacher.outputs, by_place=teacher.from_module)
    if problem:
        raise ParameterError(f"{problem}; {fit}")
    return batch


def _module(ctx: Context) -> torch.nn.Module | None:
    return ctx.model.load_torch() if ctx.model.kind == "torch" else None


def _run_at_its_batch(
    module: torch.nn.Module, probe: dict[str, np.ndarray], declared: int | None, fails: str, advice: str
) -> tuple[int | None, list[OutputShape]]:
    """(batch, outputs) on the probe samples: batch None for a model that runs on two samples,
    1 for one that fails on two but runs on one, the declared batch where there is one."""
    inputs = as_tensors(probe, declared or PROBE_SAMPLES)
    try:
        return declared, run_outputs(module, inputs)
    except Exception as exc:
        problem = failure(inputs, exc, fails)
    if not declared:
        with contextlib.suppress(Exception):
            return 1, run_outputs(module, as_tensors(probe, 1))
    raise ParameterError(f"{problem}; {advice}")
