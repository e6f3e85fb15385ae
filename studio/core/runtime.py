"""One way to run any model: a Runner takes numpy arrays by input name and returns numpy arrays.

Accuracy, fidelity and latency all go through this, so that a figure measured on ONNX Runtime
and one measured on torch differ only by the runtime, never by how inputs were prepared.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from studio.api import ModelFormatError, StudioError
from studio.core.models import (
    ModelFiles,
    ModelFormat,
    TensorSpec,
    default_output_names,
    export_torch_files,
    flatten_outputs,
    load_torch_module,
    torch_example_inputs,
    torch_input_specs,
)

if TYPE_CHECKING:
    import onnxruntime
    import torch

RUNTIMES = ("onnxruntime", "torch")
_DEVICE = re.compile(r"^(cpu|cuda)(?::(\d+))?$")


class Runner(Protocol):
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    runtime: str
    device: str

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]: ...

    def close(self) -> None: ...


# =============================================================================================
# Devices


def parse_device(text: str) -> str:
    """'cpu' or 'cuda:N', refusing a GPU this machine does not have before any work starts."""
    match = _DEVICE.match(text.strip().lower())
    if not match or (match.group(1) == "cpu" and match.group(2) is not None):
        raise StudioError(f"unknown device '{text}': use cpu or cuda:N")
    if match.group(1) == "cpu":
        return "cpu"
    index = int(match.group(2) or 0)
    count = cuda_device_count()
    if index >= count:
        has = "it has none" if count == 0 else f"it has {count}: cuda:0 to cuda:{count - 1}"
        raise StudioError(f"there is no CUDA device {index} on this machine ({has})")
    return f"cuda:{index}"


def cuda_device_count() -> int:
    """GPUs visible to this process; 0 when neither torch nor ONNX Runtime was built with CUDA."""
    import onnxruntime

    try:
        import torch

        count = torch.cuda.device_count()
    except Exception:  # a broken driver counts as no GPU, not as a crash
        count = 0
    if count == 0 and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        count = _count_nvidia_devices()
    return count


def _count_nvidia_devices() -> int:
    """Without a CUDA torch, ask the driver how many GPUs there are (one folder per GPU)."""
    return len(list(Path("/proc/driver/nvidia/gpus").glob("*")))


def _device_index(device: str) -> int:
    return int(device.split(":")[1]) if device.startswith("cuda") else -1


# =============================================================================================
# ONNX Runtime


def _ort_dtype(type_name: str) -> str:
    """'tensor(float)' → 'float32', the numpy name the rest of the studio uses."""
    inner = type_name.removeprefix("tensor(").removesuffix(")")
    return {"float": "float32", "double": "float64"}.get(inner, inner)


class OnnxRunner:
    runtime = "onnxruntime"

    def __init__(
        self,
        model_path: Path,
        *,
        device: str,
        threads: int | None,
        display_name: str | None = None,
        profile_prefix: Path | None = None,
    ) -> None:
        self.device = device
        self._owned_dir: Path | None = None
        self._session = _create_session(
            model_path, device, threads, display_name or model_path.name, profile_prefix
        )
        self.inputs = [_ort_spec(v) for v in self._session.get_inputs()]
        self.outputs = [_ort_spec(v) for v in self._session.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return list(self._session.run(None, _checked_feeds(self.inputs, feeds)))

    def end_profiling(self) -> Path:
        """The profile of every run so far (a runner opened with ``profile_prefix``), as a JSON file."""
        return Path(self._session.end_profiling())

    def close(self) -> None:
        self._session = None
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)
            self._owned_dir = None

    def __enter__(self) -> OnnxRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ort_spec(value: Any) -> TensorSpec:
    shape = tuple(d if isinstance(d, (int, str)) else None for d in (value.shape or ()))
    return TensorSpec(value.name, shape, _ort_dtype(value.type))


def _providers(device: str) -> list:
    import onnxruntime

    if device == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        raise StudioError(
            f"ONNX Runtime on this machine cannot use {device}: install onnxruntime-gpu, or use --device cpu"
        )
    return [("CUDAExecutionProvider", {"device_id": _device_index(device)}), "CPUExecutionProvider"]


def _session_options(threads: int | None, profile_prefix: Path | None = None) -> onnxruntime.SessionOptions:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(profile_prefix)
    if threads is not None:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    if profile_prefix is not None:
        # the layout rewrite of the last level renames nodes; one level down, fused kernels keep the
        # name of the node they start from, so that times map onto the layer table
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.log_severity_level = 4  # fatal only: failures reach the user as one ModelFormatError
    return options


def _create_session(
    path: Path, device: str, threads: int | None, name: str, profile_prefix: Path | None = None
) -> onnxruntime.InferenceSession:
    import onnxruntime

    providers = _providers(device)
    options = _session_options(threads, profile_prefix)
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:
        raise ModelFormatError(f"ONNX Runtime cannot load {name}: {_ort_reason(exc)}") from None


_ORT_NOISE = [
    re.compile(r"\[ONNXRuntimeError\] : \d+ : \w+ : "),
    re.compile(r"\S*\.(?:cc|cpp|h):\d+ (?:[\w:~]+\([^)]*\) )?(?:\w+ (?=[A-Z]))?"),
    re.compile(r"Exception during initialization: "),
    re.compile(r"Load model from \S+ failed:"),
    re.compile(r"This is an invalid model\. .*?, Error "),
]


def _ort_reason(exc: BaseException) -> str:
    """ONNX Runtime's message without its source locations and codes: the part a user can act on."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    for pattern in _ORT_NOISE:
        text = pattern.sub("", text)
    text = text.strip(" .:")
    return text if len(text) <= 300 else text[:297] + "..."


def _checked_feeds(specs: Sequence[TensorSpec], feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Refuse missing inputs in one sentence; widen or narrow numbers only within the same kind."""
    wanted = [s.name for s in specs]
    missing = [n for n in wanted if n not in feeds]
    if missing:
        raise StudioError(f"the model takes inputs {', '.join(wanted)}; missing {', '.join(missing)}")
    checked = {}
    for spec in specs:
        array = np.asarray(feeds[spec.name])
        target = np.dtype(spec.dtype) if spec.dtype in np.sctypeDict else array.dtype
        if array.dtype != target and array.dtype.kind == target.kind:
            array = array.astype(target)
        checked[spec.name] = array
    return checked


# =============================================================================================
# PyTorch


class TorchRunner:
    runtime = "torch"

    def __init__(self, module: torch.nn.Module, inputs: list[TensorSpec], *, device: str) -> None:
        import torch

        self.device = device
        self._torch_device = torch.device(device)
        self._module = module.to(self._torch_device)
        self.inputs = inputs
        self.outputs = self._output_specs()

    def _output_specs(self) -> list[TensorSpec]:
        example = torch_example_inputs(self.inputs)
        results = self._forward(tuple(t.to(self._torch_device) for t in example))
        names = default_output_names(len(results))
        batched = bool(self.inputs) and self.inputs[0].shape[:1] == ("batch",)
        return [
            TensorSpec(n, ("batch", *r.shape[1:]) if batched and r.ndim else tuple(r.shape), str(r.dtype))
            for n, r in zip(names, results, strict=True)
        ]

    def _forward(self, tensors: tuple) -> list[np.ndarray]:
        import torch

        with torch.inference_mode():
            result = self._module(*tensors)
        return [t.detach().cpu().numpy() for t in flatten_outputs(result)]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        import torch

        checked = _checked_feeds(self.inputs, feeds)
        tensors = tuple(
            torch.from_numpy(np.ascontiguousarray(checked[s.name])).to(self._torch_device)
            for s in self.inputs
        )
        return self._forward(tensors)

    def close(self) -> None:
        self._module = None

    def __enter__(self) -> TorchRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# =============================================================================================
# Choosing a runner


def open_runner(
    files: ModelFiles,
    *,
    runtime: str = "onnxruntime",
    device: str = "cpu",
    threads: int | None = None,
    trusted: bool = False,
    input_shapes: Sequence[tuple[int, ...]] | None = None,
    input_roles: Mapping[str, str] | None = None,
    profile_prefix: Path | None = None,
) -> Runner:
    """A runner for the model on the device; a PyTorch model on ONNX Runtime is converted first.

    The runner takes the model's batch inputs only and fills in its states and values
    (``input_roles``, inferred from the shapes when not given): see studio.core.input_roles.
    """
    from studio.core.input_roles import with_roles

    if runtime not in RUNTIMES:
        raise StudioError(f"unknown runtime '{runtime}': use {' or '.join(RUNTIMES)}")
    device = parse_device(device)
    if threads is not None and threads < 1:
        raise StudioError(f"threads must be at least 1, not {threads}")
    if runtime == "torch":
        if profile_prefix is not None:
            raise StudioError("per-layer times come from ONNX Runtime's profiler: use --runtime onnxruntime")
        runner = _open_torch(files, device, threads, trusted, input_shapes)
    elif files.format is ModelFormat.ONNX:
        runner = OnnxRunner(files.main, device=device, threads=threads, profile_prefix=profile_prefix)
    else:
        runner = _open_converted(files, device, threads, trusted, input_shapes, profile_prefix)
    try:
        return with_roles(runner, input_roles)
    except BaseException:
        runner.close()
        raise


def _open_torch(files, device, threads, trusted, input_shapes) -> TorchRunner:
    import torch

    if files.format is ModelFormat.ONNX:
        raise StudioError(
            "the torch runtime runs PyTorch models; this one is ONNX: use --runtime onnxruntime"
        )
    if threads is not None:
        torch.set_num_threads(threads)
    module = load_torch_module(files, trusted=trusted)
    return TorchRunner(module, torch_input_specs(files, module, input_shapes), device=device)


def _open_converted(files, device, threads, trusted, input_shapes, profile_prefix=None) -> OnnxRunner:
    """Export into a folder the runner owns and deletes on close."""
    folder = Path(tempfile.mkdtemp(prefix="studio-runner-"))
    try:
        path, _, _ = export_torch_files(
            files, folder / "model.onnx", trusted=trusted, input_shapes=input_shapes
        )
        runner = OnnxRunner(
            path, device=device, threads=threads, display_name=files.main.name, profile_prefix=profile_prefix
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    runner._owned_dir = folder
    return runner
