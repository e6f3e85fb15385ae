"""Knowledge distillation: a smaller PyTorch student learns to answer like the input model.

The teacher is the input version (ONNX or PyTorch). The student is either a width-reduced copy
of a PyTorch teacher (its strongest channels kept, so training starts near the teacher) or a
model the user names (another version, such as the output of prune.structured, or an
architecture file). The result is the student with the weights of its best validation epoch,
saved pickle-free next to the architecture file it was built from.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from studio import api
from studio.api import Context, ModelHandle, ParameterError, Technique, TechniqueResult

from ._teacher import Teacher, as_tensors, probe_feeds, read_teacher, student_batch
from .students import Cost, cost, input_mismatch, reinitialise, width_student
from .training import Recipe, Split, Trainer, teacher_outputs, torch_threads

if TYPE_CHECKING:
    import torch

MIN_TRAIN_SAMPLES = 32  # fewer samples teach the student the teacher's answers to nothing general
DEFAULT_LR = {"adam": 3e-3, "sgd": 0.05}  # measured on the digits demo; see the Params


@dataclass
class Student:
    """The module to train and the model whose architecture file it is saved with."""

    module: torch.nn.Module
    like: ModelHandle
    source: str  # for the details: where the student came from


class Distillation(Technique):
    name = "distill"
    title = "Knowledge distillation"
    help = (
        "Trains a smaller PyTorch student to reproduce the input model's outputs (softened by a "
        "temperature) and the labels, on the train split; keeps the epoch that scores best on "
        "the validation split. The student is a width-reduced copy of a PyTorch teacher, or a "
        "model you name with student_ref (for example a version made by prune.structured), "
        "which also works for an ONNX teacher. Costs a training run: minutes on a CPU for small "
        "models. Quantize the student afterwards for deployment."
    )
    accepts = ("onnx", "torch")
    produces = "torch"
    dataset = "inputs"
    trains = True

    class Params(api.Params):
        student: Literal["width", "version"] = Field(
            "width",
            description="width: a copy of the teacher with fewer channels per layer (needs a PyTorch "
            "teacher given as an architecture .py file); version: the model named by student_ref.",
        )
        width: float = Field(
            0.5,
            gt=0.0,
            lt=1.0,
            description="Fraction of each layer's channels the width student keeps. Parameters and "
            "multiply-adds fall with its square: 0.5 keeps about 25 % of them.",
        )
        student_ref: str = Field(
            "",
            description="The student for student=version: a version of this project (id or name) "
            "or a PyTorch architecture .py file; it must take the teacher's input.",
        )
        student_init: Literal["keep", "random"] = Field(
            "keep",
            description="keep: start from the pruned copy's weights (or the named student's own); "
            "random: fresh weights. Keeping them reached the target accuracy in fewer epochs on "
            "the digits demo.",
        )
        temperature: float = Field(
            4.0,
            ge=1.0,
            le=20.0,
            description="Softens the teacher's outputs so the student also learns how it ranks the "
            "wrong classes; 4 is the usual choice for tens of classes (2 to 4 scored alike on digits).",
        )
        alpha: float = Field(
            0.8,
            ge=0.0,
            le=1.0,
            description="Weight of the teacher's soft targets against the labels (1 - alpha); "
            "0.5 to 0.8 scored alike on digits. Without labels only the soft targets are used.",
        )
        epochs: int = Field(
            10, ge=1, le=1000, description="Passes over the train split; the best epoch is kept."
        )
        learning_rate: float = Field(
            0.0,
            ge=0.0,
            le=10.0,
            description="Starting learning rate, lowered along a cosine to zero; 0 picks 3e-3 for "
            "adam (on the digits demo it reached in 2 epochs what 1e-3 reached in 6) and 0.05 for sgd.",
            json_schema_extra={"automatic": 0.0},
        )
        batch_size: int = Field(64, ge=2, le=65536, description="Samples per training step.")
        optimizer: Literal["adam", "sgd"] = Field(
            "adam",
            description="adam converges in few epochs without tuning; sgd (momentum 0.9, weight "
            "decay 5e-4) may generalise slightly better given more epochs.",
        )
        seed: int = Field(0, ge=0, le=2**31 - 1, description="Seeds shuffling and fresh weights.")
        mixed_precision: bool = Field(
            True,
            description="On a GPU, train in bf16 (fp16 with loss scaling where the GPU lacks bf16); "
            "the CPU always trains in fp32.",
        )

    # -- before any work -------------------------------------------------------------------------

    def check(self, params: Params, ctx: Context) -> None:
        _check_dataset(ctx)
        _check_student_params(params, ctx)
        import torch

        with torch.random.fork_rng(devices=[]), torch_threads(ctx.threads):
            probe = probe_feeds(ctx)
            teacher = read_teacher(ctx, probe)
            student = _build_student(params, ctx, teacher, probe)
            student_batch(student.module, probe, teacher)
            _check_labels(ctx, teacher)

    # -- the work --------------------------------------------------------------------------------

    def run(self, params: Params, ctx: Context) -> TechniqueResult:
        import torch

        with torch.random.fork_rng(devices=[]), torch_threads(ctx.threads):
            torch.manual_seed(params.seed)
            return self._run(params, ctx)

    def _run(self, params: Params, ctx: Context) -> TechniqueResult:
        probe = probe_feeds(ctx)
        teacher = read_teacher(ctx, probe)
        train = _split(ctx, teacher, "train", (0.0, 0.08))
        validation = _split(ctx, teacher, "validation", (0.08, 0.1))
        student = _build_student(params, ctx, teacher, probe)
        batch = student_batch(student.module, probe, teacher)
        costs = _costs(ctx, teacher.layers, student.module, probe)
        trainer = Trainer(ctx, student.module, _recipe(params), batch=batch)
        history = trainer.fit(train, validation, span=(0.1, 0.97))
        ctx.progress(0.97, "saving the student")  # training changed its weights, not its outputs
        output = ctx.save_torch(trainer.student.cpu(), like=student.like)
        details = _details(params, ctx, student, costs, trainer, validation)
        details["batch"] = {"teacher": teacher.batch, "student": batch}
        return TechniqueResult(
            output=output,
            details=details,
            notes=_notes(params, details, history, train) + _shape_notes(teacher, batch, student.module),
            name=_version_name(params),
            effective_params={"learning_rate": _recipe(params).learning_rate},
        )


# -- checks ----------------------------------------------------------------------------------------


def _check_dataset(ctx: Context) -> None:
    train = ctx.dataset("train")
    if train is None:
        raise ParameterError("distill needs a dataset: the student learns the teacher's answers on it")
    if len(train) < MIN_TRAIN_SAMPLES:
        raise ParameterError(
            f"distillation needs at least {MIN_TRAIN_SAMPLES} training samples; "
            f"the train split of {train.name} has {len(train)}"
        )
    validation = ctx.dataset("validation")
    if validation is None or len(validation) == 0:
        raise ParameterError(f"{train.name} has no validation samples to choose the best epoch with")


def _check_student_params(params: Distillation.Params, ctx: Context) -> None:
    if params.student == "width":
        if params.student_ref.strip():
            raise ParameterError("student_ref is read only with student=version; set student=version too")
        if ctx.model.kind == "onnx":
            raise ParameterError(
                "an ONNX teacher has no architecture to shrink: pass student=version with student_ref "
                "naming a PyTorch student"
            )
        if ctx.model.path.suffix != ".py":
            raise ParameterError(
                f"student=width needs the teacher as an architecture .py file with weights, not "
                f"{ctx.model.path.name}; pass student=version with student_ref instead"
            )
    elif not params.student_ref.strip():
        raise ParameterError(
            "student=version needs student_ref: a version of this project or an architecture .py file"
        )


def _check_labels(ctx: Context, teacher: Teacher) -> None:
    labels = ctx.dataset("train").labels
    classes = teacher.classes()
    if labels is None or classes is None or len(labels) == 0:
        return
    top = int(np.max(labels))
    if top >= classes or int(np.min(labels)) < 0:
        raise ParameterError(
            f"the dataset has label {top} but the teacher has {classes} classes (0 to {classes - 1})"
        )


# -- the teacher -----------------------------------------------------------------------------------


def _split(ctx: Context, teacher: Teacher, part: str, span: tuple[float, float]) -> Split:
    data = ctx.dataset(part)
    lo, hi = span

    def report(fraction: float) -> None:
        ctx.progress(lo + (hi - lo) * fraction, f"the teacher's outputs on the {part} split")

    outputs = teacher_outputs(ctx, teacher.module, data.feeds(), report, teacher.batch)
    return Split(feeds=data.feeds(), teacher=outputs, labels=data.labels)


# -- the student -----------------------------------------------------------------------------------


def _build_student(params: Distillation.Params, ctx: Context, teacher: Teacher, probe: dict) -> Student:
    if params.student == "width":
        example = as_tensors(probe, teacher.batch or None)
        module = width_student(copy.deepcopy(teacher.module).cpu(), example, params.width)
        student = Student(module, ctx.model, f"width {params.width:g} copy of {ctx.model.name}")
    else:
        student = _named_student(params.student_ref.strip(), ctx)
    if params.student_init == "random":
        reinitialise(student.module, params.seed)
    student.module.eval()
    return student


def _named_student(ref: str, ctx: Context) -> Student:
    handle = ctx.model_ref(ref)
    if handle.kind != "torch":
        raise ParameterError(
            f"the student {handle.name} is an ONNX model; a student must be a PyTorch model the "
            "studio can train (an architecture .py file, or a version made from one)"
        )
    if handle.path.suffix != ".py":
        raise ParameterError(
            f"the student {handle.path.name} is not an architecture .py file; the trained student "
            "is saved next to one, so give it as build_model() plus weights"
        )
    problem = input_mismatch(ctx.model.inputs, handle.inputs)
    if problem:
        raise ParameterError(f"{problem}; a student must take the teacher's input")
    return Student(handle.load_torch(), handle, handle.name)


def _costs(
    ctx: Context, teacher: torch.nn.Module | None, student: torch.nn.Module, probe: dict
) -> dict[str, Cost]:
    one = as_tensors(probe, 1)
    student.eval()
    if teacher is not None:
        teacher_cost = cost(teacher.cpu(), one)  # predicting may have moved it to ctx.device
    else:
        teacher_cost = Cost(params=ctx.model.params, macs=ctx.model.macs)
    return {"teacher": teacher_cost, "student": cost(student, one)}


def _recipe(params: Distillation.Params) -> Recipe:
    return Recipe(
        epochs=params.epochs,
        learning_rate=params.learning_rate or DEFAULT_LR[params.optimizer],
        batch_size=params.batch_size,
        optimizer=params.optimizer,
        temperature=params.temperature,
        alpha=params.alpha,
        seed=params.seed,
        mixed_precision=params.mixed_precision,
    )


# -- what the run reports --------------------------------------------------------------------------


def _details(
    params: Distillation.Params,
    ctx: Context,
    student: Student,
    costs: dict[str, Cost],
    trainer: Trainer,
    validation: Split,
) -> dict[str, Any]:
    best = trainer.history[trainer.best]
    teacher_accuracy = None
    if validation.labels is not None and validation.teacher.ndim == 2:
        teacher_accuracy = float(ctx.accuracy(validation.teacher, validation.labels)["top1"])
    t, s = costs["teacher"], costs["student"]
    return {
        "teacher": {
            "name": ctx.model.name,
            "kind": ctx.model.kind,
            "params": t.params,
            "macs": t.macs,
            "val_accuracy": teacher_accuracy,
        },
        "student": {
            "source": student.source,
            "mode": params.student,
            "init": params.student_init,
            "params": s.params,
            "macs": s.macs,
            "val_accuracy": best.val_accuracy,
            "val_agreement": best.val_agreement,
            "start_val_accuracy": trainer.history[0].val_accuracy,
            "start_val_agreement": trainer.history[0].val_agreement,
        },
        "param_ratio": s.params / t.params if t.params else None,
        "mac_ratio": s.macs / t.macs if t.macs and s.macs is not None else None,
        "best_epoch": best.epoch,
        "epochs": [e.to_dict() for e in trainer.history],
        "settings": {**asdict(_recipe(params)), "labels_used": trainer.uses_labels(validation)},
        "training": trainer.training,
    }


def _notes(params: Distillation.Params, details: dict[str, Any], history: list, train: Split) -> list[str]:
    notes = [
        "The student is a PyTorch model: quantize it next (quantize.static) for a smaller, faster "
        "file to deploy."
    ]
    ratio, macs = details["param_ratio"], details["mac_ratio"]
    if ratio is not None:
        of_macs = "" if macs is None else f" and {macs:.0%} of its multiply-adds"
        notes.append(f"The student has {ratio:.0%} of the teacher's parameters{of_macs}.")
    if train.labels is None:
        notes.append("The dataset has no labels: the student learned the teacher's outputs alone.")
    teacher_acc = details["teacher"]["val_accuracy"]
    student_acc = details["student"]["val_accuracy"]
    if teacher_acc and student_acc is not None and student_acc < 0.98 * teacher_acc:
        notes.append(
            f"The student reaches {student_acc / teacher_acc:.1%} of the teacher's validation "
            "accuracy; more epochs or a wider student may close the gap."
        )
    if details["best_epoch"] == 0:
        notes.append(
            "Training did not improve on the student as it started; it is kept as it came, with its "
            "batch-norm statistics recomputed."
        )
    elif params.epochs > 1 and details["best_epoch"] == params.epochs:
        notes.append("The best epoch was the last one: more epochs may still help.")
    return notes


def _shape_notes(teacher: Teacher, batch: int | None, student: torch.nn.Module) -> list[str]:
    """What a fixed batch and several outputs changed about training, so no one assumes more."""
    import torch

    notes = []
    if batch:
        plural = "s" if batch > 1 else ""
        notes.append(
            f"The student takes exactly {batch} sample{plural} per run, so it was trained and scored on "
            "batches of that size (batch_size was not used)."
        )
    norms = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in student.modules())
    if batch == 1 and norms:
        notes.append(
            "The student's BatchNorm statistics stayed as they came (frozen in training, not re-estimated): "
            "single samples cannot estimate them."
        )
    if len(teacher.outputs) > 1:
        notes.append(
            f"The teacher has {len(teacher.outputs)} outputs: the student learned the first "
            f"({teacher.outputs[0].label}) from it and keeps the shapes of the others, which were not "
            "distilled: measure them before use."
        )
    return notes


def _version_name(params: Distillation.Params) -> str:
    return f"distilled-w{params.width:g}" if params.student == "width" else "distilled"
