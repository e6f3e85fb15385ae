"""The gate every step's output passes before it becomes a version.

A step may only make a model smaller or faster: it must keep the parent's interface (input and
output names, ranks and every dimension but the batch), the output must run, and it must still
answer like its parent. That last part is measured on samples the step never saw — the dataset's
validation split (steps calibrate and train on the other splits), or seeded random inputs when
there is no dataset — and stored with the version. A result whose fidelity collapsed is kept only
with a loud warning, or refused when the user set a floor; one whose interface changed is never
kept.

The thresholds live here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from studio.api import StudioError, TensorSpec, shapes_match

if TYPE_CHECKING:
    from studio.core.data import DatasetSpec
    from studio.core.runtime import Runner

AGREEMENT_FLOOR = 0.90  # top-1 agreement with the parent, for class scores on real samples
COSINE_FLOOR = 0.90  # the worst sample's cosine to the parent's output, for anything else
GATE_SAMPLES = 64
_SEED = 20261126  # random inputs the step cannot have seen: no technique draws from this seed


class InterfaceChanged(StudioError):
    """The step's output takes or gives something else than its parent: never recorded."""


@dataclass(frozen=True)
class GateReport:
    """How closely a step's output follows its parent on held-out samples."""

    samples: int
    source: str  # "validation split of DATASET" or "random inputs"
    rule: str  # "top-1 agreement" or "worst cosine": the figure judged against its floor
    figure: float
    floor: float
    cosine_mean: float
    cosine_min: float
    argmax_agreement: float
    max_abs_error: float

    @property
    def collapsed(self) -> bool:
        return self.figure < self.floor

    def sentence(self) -> str:
        """What a user reads, e.g. "top-1 agreement with the parent 42.2 % on 64 held-out samples"."""
        value = f"{100 * self.figure:.1f} %" if self.rule == "top-1 agreement" else f"{self.figure:.4f}"
        return f"{self.rule} with the parent {value} on {self.samples} held-out samples ({self.source})"

    def to_dict(self) -> dict:
        return {**asdict(self), "collapsed": self.collapsed}


def interface_problem(
    parent_inputs: Sequence[TensorSpec],
    parent_outputs: Sequence[TensorSpec],
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
) -> str | None:
    """Why the output's interface differs from its parent's, or None when it is the same.

    Names, order, ranks and every fixed dimension after the first must match; the batch
    dimension and symbolic dimensions may differ (a model may be re-exported with a free batch).
    """
    for what, before, after in (("inputs", parent_inputs, inputs), ("outputs", parent_outputs, outputs)):
        names_before, names_after = [s.name for s in before], [s.name for s in after]
        if names_before != names_after:
            return f"its {what} are {_names(names_after)} where its parent's are {_names(names_before)}"
        for old, new in zip(before, after, strict=True):
            if shapes_match(new.shape, old.shape):
                continue
            if len(old.shape) != len(new.shape):
                return f"{what[:-1]} '{new.name}' has {len(new.shape)} dimensions where its parent's has {len(old.shape)}"
            for axis, (a, b) in enumerate(zip(old.shape[1:], new.shape[1:], strict=True), start=1):
                if isinstance(a, int) and isinstance(b, int) and a > 0 and b > 0 and a != b:
                    return (
                        f"{what[:-1]} '{new.name}' has shape {_shape(new.shape)} where its parent's "
                        f"has {_shape(old.shape)} (dimension {axis} changed)"
                    )
    return None


def check_step_output(
    parent: Runner, output: Runner, dataset: DatasetSpec | None, *, floor: float | None = None
) -> GateReport:
    """Compare the output with its parent: refuse a changed interface, measure fidelity.

    ``floor`` (the user's) replaces the default floor and makes a result below it a refusal.
    """
    problem = interface_problem(parent.inputs, parent.outputs, output.inputs, output.outputs)
    if problem is not None:
        raise InterfaceChanged(f"the step changed the model's interface: {problem}; nothing was recorded")
    feeds, labelled, source = _held_out_feeds(parent.inputs, dataset)
    held_out = len(next(iter(feeds.values()))) if feeds else 0
    if floor is not None and held_out < GATE_SAMPLES:
        raise StudioError(
            f"a fidelity floor judged on {held_out} held-out samples is not a floor: it takes at least "
            f"{GATE_SAMPLES}, and the {source} has {held_out}; give a larger dataset, or no floor"
        )
    before, after = _run_all(parent, feeds), _run_all(output, feeds)
    report = _judge(before, after, real_samples=labelled, source=source, floor=floor)
    if floor is not None and report.collapsed:
        raise StudioError(
            f"the result was refused: its {report.sentence()} is below the floor of {floor:g} you set; "
            "nothing was recorded"
        )
    return report


def _judge(
    before: list[np.ndarray], after: list[np.ndarray], *, real_samples: bool, source: str, floor: float | None
) -> GateReport:
    from studio.core.evaluate import fidelity

    per_output = []
    for index, (reference, outputs) in enumerate(zip(before, after, strict=True)):
        if reference.shape != outputs.shape:
            raise InterfaceChanged(
                f"the step changed the model's interface: output {index} came out with shape "
                f"{_shape(outputs.shape)} where its parent's is {_shape(reference.shape)}; nothing was recorded"
            )
        per_output.append(fidelity(outputs.astype(np.float32), reference.astype(np.float32)))
    first = per_output[0]
    classes = before[0].ndim == 2 and before[0].shape[1] >= 2
    worst_cosine = min(f["cosine_min"] for f in per_output)
    if real_samples and classes:  # class scores on real samples: the answer is what counts
        rule, figure, default = "top-1 agreement", first["argmax_agreement"], AGREEMENT_FLOOR
    else:  # anything else, or random inputs (whose top-1 is arbitrary): the outputs themselves
        rule, figure, default = "worst cosine", worst_cosine, COSINE_FLOOR
    return GateReport(
        samples=len(before[0]),
        source=source,
        rule=rule,
        figure=float(figure),
        floor=default if floor is None else floor,
        cosine_mean=min(f["cosine_mean"] for f in per_output),
        cosine_min=worst_cosine,
        argmax_agreement=first["argmax_agreement"],
        max_abs_error=max(f["max_abs_error"] for f in per_output),
    )


def _held_out_feeds(
    inputs: Sequence[TensorSpec], dataset: DatasetSpec | None
) -> tuple[dict[str, np.ndarray], bool, str]:
    """Samples no step saw: the validation split when there is a dataset, else seeded random inputs."""
    if dataset is not None:
        from studio.core.data import bind

        data = dataset.load()
        held_out = data.split("validation")
        held_out = held_out.subset(np.arange(min(GATE_SAMPLES, len(held_out))))
        return bind(held_out, list(inputs)), True, f"validation split of {data.name}"
    rng = np.random.default_rng(_SEED)
    feeds = {}
    for spec in inputs:
        rest = list(spec.shape[1:])
        if not spec.shape or any(not (isinstance(d, int) and d > 0) for d in rest):
            raise StudioError(
                f"input '{spec.name}' has shape {_shape(spec.shape)}: without a dataset the studio cannot "
                "make samples to check the result on; give the step a dataset (--data)"
            )
        shape = (GATE_SAMPLES, *rest)  # a model with a fixed batch gets them in batches it takes
        dtype = np.dtype(spec.dtype) if spec.dtype in np.sctypeDict else np.dtype("float32")
        if dtype.kind == "f":
            feeds[spec.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b":
            feeds[spec.name] = rng.integers(0, 2, shape).astype(bool)
        else:
            feeds[spec.name] = rng.integers(0, 2, shape).astype(dtype)
    return feeds, False, "random inputs"


def _run_all(runner: Runner, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Every output for every sample, in batches the model accepts."""
    from studio.core.data import iter_batches
    from studio.core.evaluate import fixed_batch

    fixed = fixed_batch(runner.inputs)
    parts: list[list[np.ndarray]] = []
    for batch in iter_batches(feeds, fixed or GATE_SAMPLES):
        n = len(next(iter(batch.values())))
        if fixed and n < fixed:
            pad = np.minimum(np.arange(fixed), n - 1)
            batch = {k: v[pad] for k, v in batch.items()}
        parts.append([np.asarray(o)[:n] for o in runner.run(batch)])
    return [np.concatenate([p[i] for p in parts], axis=0) for i in range(len(parts[0]))]


def _names(names: Sequence[str]) -> str:
    return ", ".join(f"'{n}'" for n in names) or "none"


def _shape(shape: Sequence[object]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
