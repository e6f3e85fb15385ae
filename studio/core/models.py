"""Load, save and inspect model files without trusting them: the names the rest of the studio uses.

The work is done in :mod:`studio.core.formats` (one module per format, recognised by content,
with the trust gate beside them), :mod:`studio.core.detection` (which model a file is and which
files make it up), :mod:`studio.core.torch_inputs`, :mod:`studio.core.torch_export` and
:mod:`studio.core.parameters`. This module only gathers their public names in one place, so
callers import from one module and the pieces below can move without them noticing. Nothing
below imports it.

Like the modules it gathers, it imports neither torch nor onnx: the window imports it at
start-up and must not pay for them there.
"""

from __future__ import annotations

from studio.api import TensorSpec
from studio.core.detection import collect_files, detect_format
from studio.core.formats.architecture import read_weights
from studio.core.formats.onnx_format import load_onnx, onnx_dtype_name, onnx_graph_problem, onnx_io_specs
from studio.core.formats.registry import code_bearing_files, load_torch_module
from studio.core.formats.untrusted import untrusted_error
from studio.core.model_files import ModelFiles, ModelFormat
from studio.core.parameters import (
    count_parameters,
    initializer_sizes,
    learned_inputs,
    onnx_parameter_count,
    torch_parameter_count,
)
from studio.core.torch_export import export_onnx, export_torch_files, flatten_outputs
from studio.core.torch_inputs import (
    default_input_names,
    default_output_names,
    torch_example_inputs,
    torch_input_specs,
)

__all__ = [
    "ModelFiles",
    "ModelFormat",
    "TensorSpec",
    "code_bearing_files",
    "collect_files",
    "count_parameters",
    "default_input_names",
    "default_output_names",
    "detect_format",
    "export_onnx",
    "export_torch_files",
    "flatten_outputs",
    "initializer_sizes",
    "learned_inputs",
    "load_onnx",
    "load_torch_module",
    "onnx_dtype_name",
    "onnx_graph_problem",
    "onnx_io_specs",
    "onnx_parameter_count",
    "read_weights",
    "torch_example_inputs",
    "torch_input_specs",
    "torch_parameter_count",
    "untrusted_error",
]
