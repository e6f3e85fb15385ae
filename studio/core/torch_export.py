"""PyTorch models written as one ONNX file: what the layer table, the graph view and ONNX Runtime read.

The TorchScript-based exporter is tried first (fast, and it keeps a free batch dimension as
asked), then torch.export's. Either way the result is one self-contained file, with no `.onnx.data`
beside it, so that a copy of the file is the whole model and its size is the file's.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.api import ModelFormatError, TensorSpec, first_line, flatten_outputs
from studio.core.files import atomic_path
from studio.core.formats.registry import load_torch_module
from studio.core.model_files import ModelFiles
from studio.core.torch_inputs import default_output_names, torch_example_inputs, torch_input_specs

if TYPE_CHECKING:
    import torch

# One export at a time in a process. The exporters keep global state, and quieting them swaps the
# process's stdout, warning filters and logger level: two exports on the window's background
# threads at once (the two graphs of a comparison) left stdout pointing at a discarded buffer.
_EXPORTING = threading.Lock()


def export_onnx(
    module: torch.nn.Module,
    example_inputs: tuple,
    out_path: Path,
    *,
    input_names: Sequence[str],
    output_names: Sequence[str] | None = None,
    dynamic_batch: bool = True,
    opset: int | None = None,
) -> Path:
    """Write one self-contained ONNX file: the TorchScript exporter first (fast), else torch.export."""
    out_path = Path(out_path)
    outputs = flatten_outputs(_run_once(module, example_inputs))
    names_out = list(output_names) if output_names else default_output_names(len(outputs))
    axes = _dynamic_axes(input_names, example_inputs, names_out, outputs) if dynamic_batch else None
    kwargs = dict(input_names=list(input_names), output_names=names_out, dynamic_axes=axes)
    with _EXPORTING, atomic_path(out_path) as tmp, _quiet_export():
        try:
            _export_torchscript(module, example_inputs, tmp, opset=opset, **kwargs)
        except Exception:
            try:
                _export_dynamo(module, example_inputs, tmp, opset=opset, **kwargs)
            except Exception as exc:
                raise ModelFormatError(
                    f"the model could not be converted to ONNX: {first_line(exc)}"
                ) from None
    return out_path


def export_torch_files(
    files: ModelFiles,
    out_path: Path,
    *,
    trusted: bool,
    input_shapes: Sequence[tuple[int, ...]] | None = None,
) -> tuple[Path, torch.nn.Module, list[TensorSpec]]:
    """A stored PyTorch model as one ONNX file, its batch dimension left free where the model
    takes any batch: what the layer table, the graph view and ONNX Runtime read of a PyTorch
    version. Returns the file, the loaded module and its input specs."""
    module = load_torch_module(files, trusted=trusted)
    specs = torch_input_specs(files, module, input_shapes)
    path = export_onnx(
        module,
        torch_example_inputs(specs),
        out_path,
        input_names=[s.name for s in specs],
        dynamic_batch=bool(specs) and all(s.shape[:1] == ("batch",) for s in specs),
    )
    return path, module, specs


def _run_once(module: torch.nn.Module, example_inputs: tuple) -> Any:
    import torch

    try:
        with torch.no_grad():
            return module(*example_inputs)
    except Exception as exc:
        raise ModelFormatError(
            f"the model fails on an input of the declared shape: {first_line(exc)}"
        ) from None


def _dynamic_axes(names_in, inputs, names_out, outputs) -> dict[str, dict[int, str]]:
    pairs = [*zip(names_in, inputs, strict=False), *zip(names_out, outputs, strict=False)]
    return {name: {0: "batch"} for name, t in pairs if getattr(t, "ndim", 0) >= 1}


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """The exporters print progress and warnings; the command line's --json output must stay clean."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _export_torchscript(module, example_inputs, path: Path, *, opset, **kwargs) -> None:
    import torch

    extra = {"opset_version": opset} if opset else {}
    torch.onnx.export(
        module, example_inputs, str(path), dynamo=False, do_constant_folding=True, **extra, **kwargs
    )


def _export_dynamo(module, example_inputs, path: Path, *, opset, **kwargs) -> None:
    import torch

    extra = {"opset_version": opset} if opset else {}
    if kwargs.get("dynamic_axes") is None:
        kwargs.pop("dynamic_axes")
    torch.onnx.export(
        module, example_inputs, str(path), dynamo=True, external_data=False, verbose=False, **extra, **kwargs
    )
