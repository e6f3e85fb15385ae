"""The public API that plugins import; the one module of the studio they may depend on.

A technique turns one model version into another. It declares what it is (name, title, help),
what it accepts, and its parameters as a pydantic model — the window builds its form from that
schema, the command line parses ``--set key=value`` against it, recipes validate against it.
It runs with a :class:`Context` that hands it the input model, the datasets, the device, a
place to write its output, progress reporting and cancellation. The studio, not the technique,
records the result as a new version linked to its parent and measures it.

This module also holds the error types every layer raises for problems the user can fix, so
that the command line and the window can show one clear sentence instead of a traceback.

A third-party technique is a package with an entry point in the ``studio.techniques`` group::

    [project.entry-points."studio.techniques"]
    "mycompany.clip" = "mycompany_studio.clip:ClipWeights"
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict

# How compute is counted, re-exported for techniques: ``node_macs(node, shapes)`` for one ONNX
# node, ``module_macs(module, example)`` per sample for a torch module's Conv and Linear layers.
# The layer table counts with the same rules, so a technique's figures match the window's.
from studio._macs import module_macs as module_macs
from studio._macs import node_macs as node_macs

# A torch model's outputs, re-exported for techniques that must keep them (pruning, a width student):
# ``outputs_of``/``run_outputs`` give each returned tensor's place and shape, ``shapes_match`` is the
# gate's rule for two shapes, ``output_layers`` names the Conv/Linear layers that set their width.
from studio._output_layers import OutputShape as OutputShape
from studio._output_layers import flatten_outputs as flatten_outputs
from studio._output_layers import is_program as is_program
from studio._output_layers import output_layers as output_layers
from studio._output_layers import outputs_of as outputs_of
from studio._output_layers import run_outputs as run_outputs
from studio._output_layers import shapes_match as shapes_match

# A training loop's placement, for techniques that train: ``TrainingRun(module, ctx.device)`` puts the
# module on the step's device, wraps it for data-parallel ranks when the step runs as several, picks
# mixed precision on a GPU and deals out each rank's share of every batch (see studio._training).
from studio._training import TrainingRun as TrainingRun
from studio._training import training_precision as training_precision

# The errors every layer raises (studio.errors owns them), here for plugins: this is the one
# module of the studio they may import.
from studio.errors import Cancelled as Cancelled
from studio.errors import DatasetError as DatasetError
from studio.errors import ModelFormatError as ModelFormatError
from studio.errors import ParameterError as ParameterError
from studio.errors import StudioError as StudioError
from studio.errors import UntrustedFileError as UntrustedFileError
from studio.errors import first_line as first_line

if TYPE_CHECKING:  # heavy libraries are the plugin's business, imported only when it runs
    import numpy as np
    import onnx
    import torch

API_VERSION = 1
ENTRY_POINT_GROUP = "studio.techniques"

ModelKind = Literal["onnx", "torch"]
DatasetNeed = Literal["none", "optional", "inputs", "labels"]
Split = Literal["train", "validation", "calibration"]


# -- values shared by the studio and plugins -------------------------------------------------------


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output. Unknown or symbolic dimensions are strings ("batch") or None.

    An input's ``role`` says what it is fed: "batch" (samples, one per row), "state" (zeros, the
    start of a stream) or a number it always holds, such as "16000" for a sample rate.
    """

    name: str
    shape: tuple[int | str | None, ...]
    dtype: str  # numpy dtype name: "float32", "int64", ...
    role: str = "batch"

    def to_dict(self) -> dict:
        d = {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}
        return d if self.role == "batch" else {**d, "role": self.role}

    @classmethod
    def from_dict(cls, d: dict) -> TensorSpec:
        return cls(d["name"], tuple(d["shape"]), d["dtype"], d.get("role", "batch"))


class Params(BaseModel):
    """Base of every technique's parameters: typed, ranged with ``Field(ge=…, le=…)``, described
    with ``Field(description=…)`` (the window's help text), unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class ModelOutput:
    """Files a technique wrote into ``ctx.output_dir``; made by ``ctx.save_onnx``/``ctx.save_torch``."""

    main: Path
    kind: ModelKind


@dataclass
class TechniqueResult:
    """What a run hands back. ``details`` is JSON-ready (a per-layer table, the sparsity reached);
    ``notes`` are honest remarks shown beside the new version ("no speed-up on dense runtimes")."""

    output: ModelOutput
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    name: str | None = None  # a suggested version name; the studio makes one otherwise
    # The values used where a parameter leaves the choice to the technique (no epochs given: 5;
    # a learning rate of 0: the optimizer's default): recorded over the parameters as given, so a
    # version says what ran.
    effective_params: dict[str, Any] = field(default_factory=dict)


# -- what a technique is given -----------------------------------------------------------------------


class ModelHandle(Protocol):
    """A model a technique reads: the input version, or another one it names (a student, a teacher)."""

    name: str
    kind: ModelKind
    path: Path  # the main file, read-only: never write next to it
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    params: int
    macs: int | None  # None when a shape the count needs cannot be known

    def onnx_path(self) -> Path:
        """The model as one ONNX file (torch models are exported once, then reused)."""

    def load_onnx(self) -> onnx.ModelProto: ...

    def load_torch(self) -> torch.nn.Module:
        """A fresh copy in eval mode; raises ParameterError for an ONNX model."""

    def example_inputs(self, batch: int = 1) -> tuple[torch.Tensor, ...]: ...

    def fixed_inputs(self) -> dict[str, np.ndarray]:
        """What the inputs that take no samples are fed (a state's zeros, a sample rate's value),
        to add to every batch a technique runs itself; empty for most models. With a state among
        them, run one sample at a time: the state holds one stream."""


class DatasetHandle(Protocol):
    """One split of the dataset the user chose, already checked against the model's inputs."""

    name: str
    labels: np.ndarray | None

    def __len__(self) -> int: ...

    def feeds(self) -> dict[str, np.ndarray]:
        """Arrays keyed by the input model's input names, ready for onnxruntime."""

    def batches(self, batch_size: int, *, shuffle: bool = False, seed: int = 0): ...


class Context(Protocol):
    """Everything a technique may touch while it runs, in a worker process."""

    model: ModelHandle
    device: str  # "cpu" or "cuda:N"
    threads: int | None
    log: logging.Logger
    output_dir: Path  # the only place a technique writes

    def dataset(self, split: Split = "train") -> DatasetHandle | None:
        """The chosen dataset's split, or None when the user gave none."""

    def model_ref(self, ref: str) -> ModelHandle:
        """Another version of the project (id or name) or a model file (trust rules apply)."""

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress in 0..1; raises :class:`Cancelled` when the user asked to stop."""

    def cancelled(self) -> bool: ...

    def predict(
        self, model: ModelHandle | Path | torch.nn.Module, feeds: dict[str, np.ndarray]
    ) -> np.ndarray:
        """The model's first output over all samples of ``feeds`` (batched, on ctx.device)."""

    def accuracy(self, outputs: np.ndarray, labels: np.ndarray) -> dict[str, float]: ...

    def fidelity(self, outputs: np.ndarray, reference: np.ndarray) -> dict[str, float]:
        """cosine_mean, cosine_min (judge quality by the minimum), argmax_agreement, max_abs_error."""

    def latency_ms(self, model: Path, *, batch: int = 1, runs: int = 50) -> float:
        """Median latency of an ONNX file on this device with ctx.threads: for choosing between candidates."""

    def save_onnx(self, model: onnx.ModelProto | Path, name: str = "model.onnx") -> ModelOutput:
        """Write an ONNX model (a proto, or a file made in a temporary place) as the output."""

    def save_torch(self, module: torch.nn.Module, like: ModelHandle | None = None) -> ModelOutput:
        """Write a torch model without pickle: the architecture file of ``like`` (default: the
        input model), the changed layer shapes, and safetensors weights."""

    def temp_dir(self) -> Path:
        """A scratch folder removed after the run."""


# -- what a technique is -------------------------------------------------------------------------


class Technique(ABC):
    """Subclass, fill in the class attributes, implement :meth:`run` (and :meth:`check`)."""

    name: ClassVar[str]  # "quantize.dynamic": the name users type
    title: ClassVar[str]  # "Dynamic INT8 quantization": the window's label
    help: ClassVar[str]  # a paragraph: when to use it, what it costs
    accepts: ClassVar[tuple[ModelKind, ...]] = ("onnx", "torch")
    produces: ClassVar[ModelKind] = "onnx"
    dataset: ClassVar[DatasetNeed] = "optional"
    # A technique that trains (fine-tuning, distillation) runs on a GPU by default when there is
    # one, and may run as several data-parallel ranks; its loop uses TrainingRun.
    trains: ClassVar[bool] = False
    Params: ClassVar[type[Params]] = Params

    def check(self, params: Params, ctx: Context) -> None:  # noqa: B027 - optional hook
        """Cheap checks before any work starts (sizes, ratios, shapes); raise ParameterError."""

    @abstractmethod
    def run(self, params: Params, ctx: Context) -> TechniqueResult:
        """Do the work, calling ``ctx.progress`` often; write only into ``ctx.output_dir``."""
