"""One way to run any model: a Runner takes numpy arrays by input name and returns numpy arrays.

Accuracy, fidelity and latency all go through this, so that a figure measured on ONNX Runtime
and one measured on torch differ only by the runtime, never by how inputs were prepared.
"""

from __future__ import annotations

import json
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
    """One ONNX Runtime session. With ``placement`` its first run is profiled (then profiling
    stops) so that :meth:`node_placement` can tell which provider ran each node."""

    runtime = "onnxruntime"

    def __init__(
        self,
        model_path: Path,
        *,
        device: str,
        threads: int | None,
        display_name: str | None = None,
        profile_prefix: Path | None = None,
        provider: str | None = None,
        placement: bool = False,
    ) -> None:
        self.device = device
        self.requested_provider = provider_name(provider, device)
        self._owned_dir: Path | None = None
        self._placement_dir: Path | None = None
        if placement and profile_prefix is None:
            self._placement_dir = Path(tempfile.mkdtemp(prefix="studio-placement-"))
            profile_prefix = self._placement_dir / "placement"
        try:
            self._session = _create_session(
                model_path, device, threads, display_name or model_path.name, profile_prefix,
                provider, for_layers=self._placement_dir is None,
            )  # fmt: skip
        except BaseException:
            self._remove_placement_dir()
            raise
        self.session_providers = list(self._session.get_providers())
        self.provider = next(
            (p for p in self.session_providers if p == self.requested_provider), self.session_providers[0]
        )
        self.inputs = [_ort_spec(v) for v in self._session.get_inputs()]
        self.outputs = [_ort_spec(v) for v in self._session.get_outputs()]

    def node_placement(self) -> dict:
        """Nodes per provider in the first run, and the sentence to show when the CPU ran some of
        what a GPU provider was asked for; call it after at least one run. Profiling ends here."""
        from studio.core.layer_times import nodes_by_provider

        if self._placement_dir is None:
            raise StudioError("this runner was not opened to record where its nodes ran")
        try:
            events = json.loads(Path(self._session.end_profiling()).read_text())
        finally:
            self._remove_placement_dir()
        nodes = nodes_by_provider(events)
        return {
            "requested": self.requested_provider,
            "session_providers": self.session_providers,
            "nodes": nodes,
            "fallback": fallback_sentence(self.requested_provider, self.session_providers, nodes),
        }

    def _remove_placement_dir(self) -> None:
        if self._placement_dir is not None:
            shutil.rmtree(self._placement_dir, ignore_errors=True)
            self._placement_dir = None

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return list(self._session.run(None, _checked_feeds(self.inputs, feeds)))

    def end_profiling(self) -> Path:
        """The profile of every run so far (a runner opened with ``profile_prefix``), as a JSON file."""
        return Path(self._session.end_profiling())

    def close(self) -> None:
        self._session = None
        self._remove_placement_dir()
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


# ONNX Runtime's execution providers as the command line names them (``--provider cuda``)
PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
CPU_PROVIDER = PROVIDERS["cpu"]
_INSTALL = {
    "CUDAExecutionProvider": "install onnxruntime-gpu in place of onnxruntime (with the CUDA and cuDNN "
    "it was built for), or use --device cpu",
    "TensorrtExecutionProvider": "install onnxruntime-gpu in place of onnxruntime and TensorRT "
    "(pip install tensorrt), or use --provider cuda",
}


def provider_name(text: str | None, device: str) -> str:
    """ONNX Runtime's name of the provider asked for (short or full), else the device's own."""
    if not text:
        return CPU_PROVIDER if device == "cpu" else PROVIDERS["cuda"]
    by_name = {name.lower(): name for name in PROVIDERS.values()}
    found = PROVIDERS.get(text.strip().lower()) or by_name.get(text.strip().lower())
    if found is None:
        raise StudioError(f"unknown provider '{text}': use {', '.join(PROVIDERS)}")
    return found


def check_provider(provider: str, device: str) -> None:
    """Refuse, in one sentence and before anything is timed, a provider this ONNX Runtime lacks
    (it would otherwise run every node on the CPU and say nothing) or one that does not run on
    the device asked for."""
    import onnxruntime

    available = onnxruntime.get_available_providers()
    if provider not in available:
        raise StudioError(
            f"ONNX Runtime on this machine has no {provider} (it has {', '.join(available)}): "
            + _INSTALL.get(provider, "install a build of ONNX Runtime that has it")
        )
    on_cpu = device.split(":")[0] == "cpu"
    if on_cpu != (provider == CPU_PROVIDER):
        wanted = "--device cpu" if provider == CPU_PROVIDER else "--device cuda:N"
        raise StudioError(f"{provider} does not run on {device}: use {wanted} with it")


def _providers(device: str, provider: str | None = None) -> list:
    """What the session is asked for: the provider, the ones it falls back to, the CPU last."""
    chosen = provider_name(provider, device)
    check_provider(chosen, device)
    if chosen == CPU_PROVIDER:
        return [CPU_PROVIDER]
    options = {"device_id": _device_index(device)}
    cuda = ("CUDAExecutionProvider", options)
    if chosen == "CUDAExecutionProvider":
        return [cuda, CPU_PROVIDER]
    return [(chosen, options), cuda, CPU_PROVIDER]


def fallback_sentence(requested: str, session: Sequence[str], nodes: Mapping[str, int]) -> str | None:
    """Where a GPU provider was asked for, how much of the model ran on the CPU (or whether ONNX
    Runtime dropped the provider), in words; None when every node ran where it was asked to."""
    if requested == CPU_PROVIDER:
        return None
    total, on_cpu = sum(nodes.values()), nodes.get(CPU_PROVIDER, 0)
    if on_cpu and on_cpu == total:
        cpu = f"all {total} nodes ran on the CPU"
    else:
        cpu = f"{on_cpu} of {total} nodes ran on the CPU" if on_cpu else None
    if requested not in session:
        elsewhere = ", ".join(nodes) or "other providers"
        return f"ONNX Runtime dropped {requested} when it opened the model: {cpu or f'its nodes ran on {elsewhere}'}"
    if cpu is not None and on_cpu == total:
        return f"{cpu}, none on {requested}"
    return cpu


def _session_options(
    threads: int | None, profile_prefix: Path | None = None, *, for_layers: bool = True
) -> onnxruntime.SessionOptions:
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
    if profile_prefix is not None and for_layers:
        # the layout rewrite of the last level renames nodes; one level down, fused kernels keep the
        # name of the node they start from, so that times map onto the layer table
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.log_severity_level = 4  # fatal only: failures reach the user as one ModelFormatError
    return options


def _create_session(
    path: Path,
    device: str,
    threads: int | None,
    name: str,
    profile_prefix: Path | None = None,
    provider: str | None = None,
    for_layers: bool = True,
) -> onnxruntime.InferenceSession:
    import onnxruntime

    providers = _providers(device, provider)
    options = _session_options(threads, profile_prefix, for_layers=for_layers)
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:
        raise ModelFormatError(f"ONNX Runtime cannot load {name}: {ort_reason(exc)}") from None


_ORT_NOISE = [
    re.compile(r"\[ONNXRuntimeError\] : \d+ : \w+ : "),
    re.compile(r"\S*\.(?:cc|cpp|h):\d+ (?:[\w:~]+\([^)]*\) )?(?:\w+ (?=[A-Z]))?"),
    re.compile(r"Exception during initialization: "),
    re.compile(r"Load model from \S+ failed:"),
    re.compile(r"This is an invalid model\. .*?, Error "),
]


def ort_reason(exc: BaseException) -> str:
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


TORCH_MODES = {"eager": "eager", "compile": "torch.compile", "cuda-graphs": "torch.compile (CUDA graphs)"}


class TorchRunner:
    """A PyTorch module, run eagerly or through ``torch.compile`` (``mode``, a key of TORCH_MODES).

    A compiled module that fails to compile (on the CPU inductor needs a C++ compiler) is refused
    in one sentence rather than run eagerly under the compiled name: ``mode_ran`` is what ran.
    """

    runtime = "torch"

    def __init__(
        self, module: torch.nn.Module, inputs: list[TensorSpec], *, device: str, mode: str = "eager"
    ) -> None:
        import torch

        if mode not in TORCH_MODES:
            raise StudioError(f"unknown torch mode '{mode}': use {', '.join(TORCH_MODES)}")
        if mode == "cuda-graphs" and not device.startswith("cuda"):
            raise StudioError("CUDA graphs run on a GPU only: use --device cuda:N, or --torch-mode compile")
        self.device = device
        self.mode = mode
        self.mode_ran = TORCH_MODES[mode]
        self._torch_device = torch.device(device)
        self._module = module.to(self._torch_device)
        if mode != "eager":
            self._module = torch.compile(
                self._module, mode="reduce-overhead" if mode == "cuda-graphs" else None
            )
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
            result = self._module(*tensors) if self.mode == "eager" else self._compiled(tensors)
        return [t.detach().cpu().numpy() for t in flatten_outputs(result)]

    def _compiled(self, tensors: tuple):
        try:
            return self._module(*tensors)
        except StudioError:
            raise
        except Exception as exc:  # compilation happens on a call, for each new input shape
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise StudioError(
                f"torch.compile failed on this machine ({first}): measure in eager mode instead "
                "(leave out --torch-mode)"
            ) from None

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
    provider: str | None = None,
    placement: bool = False,
    torch_mode: str = "eager",
) -> Runner:
    """A runner for the model on the device; a PyTorch model on ONNX Runtime is converted first.

    The runner takes the model's batch inputs only and fills in its states and values
    (``input_roles``, inferred from the shapes when not given): see studio.core.input_roles.
    ``provider`` and ``placement`` are ONNX Runtime's (see OnnxRunner), ``torch_mode`` torch's.
    """
    from studio.core.input_roles import with_roles

    if runtime not in RUNTIMES:
        raise StudioError(f"unknown runtime '{runtime}': use {' or '.join(RUNTIMES)}")
    device = parse_device(device)
    if threads is not None and threads < 1:
        raise StudioError(f"threads must be at least 1, not {threads}")
    ort = {"profile_prefix": profile_prefix, "provider": provider, "placement": placement}
    if runtime == "torch":
        if profile_prefix is not None:
            raise StudioError("per-layer times come from ONNX Runtime's profiler: use --runtime onnxruntime")
        if provider is not None:
            raise StudioError("a provider is ONNX Runtime's: leave out --provider with --runtime torch")
        runner = _open_torch(files, device, threads, trusted, input_shapes, torch_mode)
    elif torch_mode != "eager":
        raise StudioError("torch.compile is torch's: use --runtime torch with --torch-mode")
    elif files.format is ModelFormat.ONNX:
        runner = OnnxRunner(files.main, device=device, threads=threads, **ort)
    else:
        runner = _open_converted(files, device, threads, trusted, input_shapes, ort)
    try:
        return with_roles(runner, input_roles)
    except BaseException:
        runner.close()
        raise


def _open_torch(files, device, threads, trusted, input_shapes, mode: str = "eager") -> TorchRunner:
    import torch

    if files.format is ModelFormat.ONNX:
        raise StudioError(
            "the torch runtime runs PyTorch models; this one is ONNX: use --runtime onnxruntime"
        )
    if threads is not None:
        torch.set_num_threads(threads)
    module = load_torch_module(files, trusted=trusted)
    return TorchRunner(module, torch_input_specs(files, module, input_shapes), device=device, mode=mode)


def _open_converted(files, device, threads, trusted, input_shapes, ort: dict | None = None) -> OnnxRunner:
    """Export into a folder the runner owns and deletes on close."""
    folder = Path(tempfile.mkdtemp(prefix="studio-runner-"))
    try:
        path, _, _ = export_torch_files(
            files, folder / "model.onnx", trusted=trusted, input_shapes=input_shapes
        )
        runner = OnnxRunner(path, device=device, threads=threads, display_name=files.main.name, **(ort or {}))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    runner._owned_dir = folder
    return runner
