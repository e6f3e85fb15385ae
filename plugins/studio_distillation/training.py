"""The distillation loop: the student learns the teacher's softened outputs (and the labels).

The teacher's outputs are computed once over the whole train and validation splits rather than
per batch: there is no data augmentation, so every epoch would ask the teacher the same
questions, and for a teacher many times the student's size that would dominate the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from studio.api import Context, TrainingRun, flatten_outputs, is_program

if TYPE_CHECKING:
    import torch

REPORT_EVERY_S = 0.5  # progress (and so cancel) is checked at least this often inside an epoch
TEACHER_CHUNKS = 10  # the teacher's pass is reported in about this many steps
PROGRAM_BATCH = 64  # samples per run of a torch.export program that takes any batch


@dataclass(frozen=True)
class Recipe:
    """How the student is trained; the technique's parameters that shape the loop."""

    epochs: int
    learning_rate: float
    batch_size: int
    optimizer: str  # "adam" or "sgd"
    temperature: float
    alpha: float  # weight of the teacher's soft targets; 1 - alpha goes to the labels
    seed: int
    mixed_precision: bool = True  # autocast on a GPU (see studio.api.TrainingRun)


@dataclass(frozen=True)
class Split:
    """One split with the teacher's answers to it, as the loop reads them."""

    feeds: dict[str, np.ndarray]  # keyed by the teacher's input names, in its input order
    teacher: np.ndarray  # the teacher's first output per sample
    labels: np.ndarray | None

    def __len__(self) -> int:
        return len(self.teacher)


@dataclass
class Epoch:
    """One row of the training chart.

    The first row (epoch 0, ``trained`` False) is the student scored before any training step: it
    has validation figures but no training losses. Every later row is one pass over the train split.
    """

    epoch: int  # 0: the student before training
    trained: bool  # False only for the row scored before training
    loss: float | None  # the training losses: None on the row before training
    soft_loss: float | None
    hard_loss: float | None
    val_accuracy: float | None
    val_agreement: float
    val_soft_loss: float
    seconds: float

    def score(self) -> tuple[float, float, float]:
        """Higher is better: accuracy where there are labels, then agreement, then closeness."""
        accuracy = -1.0 if self.val_accuracy is None else self.val_accuracy
        return (accuracy, self.val_agreement, -self.val_soft_loss)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def teacher_outputs(
    ctx: Context,
    teacher: torch.nn.Module | None,
    feeds: dict[str, np.ndarray],
    report: Callable[[float], None],
    batch: int | None = None,
) -> np.ndarray:
    """The teacher's first output on every sample: the torch module itself, or ONNX Runtime
    (which feeds a model with a fixed batch that many samples per run by itself)."""
    n = len(next(iter(feeds.values())))
    step = max(256, -(-n // TEACHER_CHUNKS))
    parts = []
    for start in range(0, n, step):
        chunk = {k: v[start : start + step] for k, v in feeds.items()}
        if teacher is None:
            parts.append(np.asarray(ctx.predict(ctx.model, chunk)))
        else:
            parts.append(predict(ctx, teacher, chunk, batch))
        report(min(start + step, n) / n)
    return np.concatenate(parts).astype(np.float32, copy=False)


def predict(
    ctx: Context, module: torch.nn.Module, feeds: dict[str, np.ndarray], batch: int | None
) -> np.ndarray:
    """The module's first output on every sample; a model with a fixed batch gets exactly that many
    samples per run (the last run padded with copies of its last sample, the padding cut off).

    A torch.export program is run here rather than by the studio, whose runner would put it in
    eval mode (which its module refuses) or convert it to ONNX on every call.
    """
    program = is_program(module)
    if not batch and not program:
        return np.asarray(ctx.predict(module, feeds))
    size = batch or PROGRAM_BATCH
    n = len(next(iter(feeds.values())))
    parts = []
    for start in range(0, n, size):
        rows = np.minimum(np.arange(start, start + size), n - 1)
        chunk = {k: v[rows] for k, v in feeds.items()}
        outputs = (
            _run_program(module, chunk, ctx.device) if program else np.asarray(ctx.predict(module, chunk))
        )
        parts.append(outputs[: min(size, n - start)])
    return np.concatenate(parts)


def _run_program(module: torch.nn.Module, feeds: dict[str, np.ndarray], device: str) -> np.ndarray:
    import torch

    inputs = tuple(torch.from_numpy(np.ascontiguousarray(v)).to(device) for v in feeds.values())
    with torch.no_grad():  # no eval(): a program is exported for inference already
        output = flatten_outputs(module.to(device)(*inputs))[0]
    return output.detach().float().cpu().numpy()


def distill_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    labels: torch.Tensor | None,
    temperature: float,
    alpha: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Hinton's loss: KL to the softened teacher (scaled by T² so its gradients keep their size
    as T changes) mixed with cross-entropy on the labels; the soft part alone without labels."""
    import torch.nn.functional as F  # noqa: N812 - the usual name

    t = temperature
    soft = F.kl_div(
        F.log_softmax(student / t, dim=1),
        F.log_softmax(teacher / t, dim=1),
        log_target=True,
        reduction="batchmean",
    ) * (t * t)
    if labels is None:
        return soft, soft, None
    hard = F.cross_entropy(student, labels)
    return alpha * soft + (1.0 - alpha) * hard, soft, hard


class Trainer:
    """Trains one student against precomputed teacher outputs and keeps its best epoch.

    A student that takes a fixed batch (``batch``) is trained, re-estimated and scored on
    batches of exactly that size, whatever the recipe's batch size; at a batch of one its
    BatchNorm statistics stay as they came (single samples cannot estimate them).
    """

    def __init__(
        self, ctx: Context, student: torch.nn.Module, recipe: Recipe, batch: int | None = None
    ) -> None:
        self.ctx = ctx
        self.student = student
        self.recipe = recipe
        self.batch = batch
        self.run: TrainingRun | None = None  # made when fit() has the data for its example
        self.training: dict[str, Any] = {}  # where it ran: device, ranks, precision, peak GPU memory
        self.history: list[Epoch] = []
        self.best: int | None = None  # index into history
        self._best_state: dict[str, torch.Tensor] | None = None

    def fit(self, train: Split, validation: Split, span: tuple[float, float]) -> list[Epoch]:
        """Run every epoch, reporting progress inside ``span``; leaves the best weights loaded."""
        import torch

        self.student.to(self.ctx.device)
        tensors = self._tensors(train)
        example = tuple(x[: self.batch or 2] for x in tensors[0])
        self.run = TrainingRun(
            self.student, self.ctx.device, mixed_precision=self.recipe.mixed_precision, example=example
        )
        optimizer = self._optimizer()
        steps = self.recipe.epochs * len(self._batches(len(train), 0))
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1))
        self._start(tensors[0], validation)
        for epoch in range(self.recipe.epochs):
            lo = span[0] + (span[1] - span[0]) * epoch / self.recipe.epochs
            hi = span[0] + (span[1] - span[0]) * (epoch + 1) / self.recipe.epochs
            record = self._epoch(epoch, tensors, optimizer, schedule, (lo, hi))
            self._recalibrate(tensors[0])
            record = self._evaluate(record, validation)
            self._keep_if_best(record)
            self.ctx.progress(hi, self._describe(record))
        self.training = self.run.finish()
        self.student.load_state_dict(self._best_state)
        self.student.eval()
        return self.history

    def _start(self, inputs: tuple[torch.Tensor, ...], validation: Split) -> None:
        """Score the student before training (epoch 0): what distillation adds is measured from here,
        and a student that training cannot improve is kept as it came."""
        self._recalibrate(inputs)
        start = Epoch(
            epoch=0,
            trained=False,
            loss=None,
            soft_loss=None,
            hard_loss=None,
            val_accuracy=None,
            val_agreement=0.0,
            val_soft_loss=0.0,
            seconds=0.0,
        )
        self._keep_if_best(self._evaluate(start, validation))

    # -- one epoch -------------------------------------------------------------------------------

    def _epoch(self, epoch, tensors, optimizer, schedule, span) -> Epoch:
        inputs, teacher, labels = tensors
        self.student.train()
        if self.batch == 1:
            _freeze_batchnorm(self.student)
        batches = self._batches(len(teacher), epoch)
        started = last_report = time.monotonic()
        sums = np.zeros(3)
        for i, idx in enumerate(batches):
            with self.run.autocast():
                output = self.student_output(tuple(x[idx] for x in inputs))
            loss, soft, hard = distill_loss(
                output.float(),
                teacher[idx],
                None if labels is None else labels[idx],
                self.recipe.temperature,
                self.recipe.alpha,
            )
            self.run.step(loss, optimizer)
            schedule.step()
            sums += [loss.item(), soft.item(), 0.0 if hard is None else hard.item()]
            if time.monotonic() - last_report >= REPORT_EVERY_S:
                last_report = time.monotonic()
                fraction = span[0] + (span[1] - span[0]) * (i + 1) / len(batches)
                self.ctx.progress(
                    fraction, f"epoch {epoch + 1}/{self.recipe.epochs}: batch {i + 1}/{len(batches)}"
                )
        mean = np.asarray(self.run.total(*sums, len(batches)))  # every rank's batches
        mean = mean[:3] / max(mean[3], 1)
        return Epoch(
            epoch=epoch + 1,
            trained=True,
            loss=float(mean[0]),
            soft_loss=float(mean[1]),
            hard_loss=None if labels is None else float(mean[2]),
            val_accuracy=None,
            val_agreement=0.0,
            val_soft_loss=0.0,
            seconds=time.monotonic() - started,
        )

    def student_output(self, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The training forward pass: through the rank wrapper, so gradients are averaged across ranks."""
        from .students import first_output

        return first_output(self.run.model(*inputs))

    def _batches(self, n: int, epoch: int) -> list[np.ndarray]:
        """This rank's shuffled batches; a last batch of one sample joins the one before (batch norm
        needs two). A student with a fixed batch gets batches of exactly that size, the rest left out."""
        if self.batch:
            batches = self.run.batches(n, self.batch, seed=self.recipe.seed, epoch=epoch, fixed=True)
            return [b for b in batches if len(b) == self.batch]
        size = min(self.recipe.batch_size, n)
        batches = self.run.batches(n, size, seed=self.recipe.seed, epoch=epoch)
        if len(batches) > 1 and len(batches[-1]) < 2:
            batches[-2] = np.concatenate([batches[-2], batches.pop()])
        return batches

    def _optimizer(self) -> torch.optim.Optimizer:
        import torch

        params = self.student.parameters()
        if self.recipe.optimizer == "sgd":
            return torch.optim.SGD(
                params, lr=self.recipe.learning_rate, momentum=0.9, nesterov=True, weight_decay=5e-4
            )
        return torch.optim.Adam(params, lr=self.recipe.learning_rate)

    def _tensors(self, split: Split) -> tuple[tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor | None]:
        import torch

        device = self.ctx.device
        inputs = tuple(torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in split.feeds.values())
        teacher = torch.from_numpy(split.teacher).to(device)
        labels = None
        if self.uses_labels(split):
            labels = torch.from_numpy(split.labels.astype(np.int64)).to(device)
        return inputs, teacher, labels

    def uses_labels(self, split: Split) -> bool:
        """Class labels steer the student only for (N, classes) outputs and when alpha leaves room."""
        return split.labels is not None and split.teacher.ndim == 2 and self.recipe.alpha < 1.0

    # -- after each epoch --------------------------------------------------------------------------

    def _recalibrate(self, inputs: tuple[torch.Tensor, ...]) -> None:
        """Recompute batch-norm statistics for the weights as they are now.

        The running averages lag behind weights that training keeps moving (and after pruning
        they describe channels that are gone), so an evaluation with them under-rates the
        student, most after short runs; one pass over the train split fixes them exactly.
        """
        import torch

        norms = [m for m in self.student.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        if not norms or self.batch == 1:
            return
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the pass
        n, size = len(inputs[0]), self.batch or self.recipe.batch_size
        training = self.student.training
        self.student.train()  # batch statistics are gathered only in training mode
        with torch.no_grad():
            for start in range(0, n, size):
                if n - start >= (size if self.batch else 2):
                    self.student(*(x[start : start + size] for x in inputs))
        self.student.train(training)
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum

    def _evaluate(self, record: Epoch, validation: Split) -> Epoch:
        import torch

        outputs = predict(self.ctx, self.student, validation.feeds, self.batch).astype(np.float32, copy=False)
        self.student.train()
        if validation.labels is not None and outputs.ndim == 2:
            record.val_accuracy = float(self.ctx.accuracy(outputs, validation.labels)["top1"])
        record.val_agreement = float(self.ctx.fidelity(outputs, validation.teacher)["argmax_agreement"])
        soft, _, _ = distill_loss(
            torch.from_numpy(outputs),
            torch.from_numpy(validation.teacher),
            None,
            self.recipe.temperature,
            self.recipe.alpha,
        )
        record.val_soft_loss = float(soft)
        return record

    def _keep_if_best(self, record: Epoch) -> None:
        self.history.append(record)
        if self.best is None or record.score() > self.history[self.best].score():
            self.best = len(self.history) - 1
            self._best_state = {k: v.detach().clone() for k, v in self.student.state_dict().items()}

    def _describe(self, record: Epoch) -> str:
        parts = [f"epoch {record.epoch}/{self.recipe.epochs}: loss {record.loss:.3f}"]
        if record.val_accuracy is not None:
            parts.append(f"validation top-1 {record.val_accuracy:.2%}")
        parts.append(f"agreement with the teacher {record.val_agreement:.2%}")
        parts.append(f"{record.seconds:.1f} s")  # per epoch: what the rest of the run will cost
        return ", ".join(parts)


def _freeze_batchnorm(module: torch.nn.Module) -> None:
    """Every BatchNorm in eval mode inside a training student: its statistics stay as they are."""
    import torch

    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Use the run's thread count inside the block only, so an in-process caller keeps its own."""
    import torch

    if not threads:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
