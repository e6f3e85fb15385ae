"""Exports that leave the project: a standalone ONNX file, and TensorRT engines (or what a
TensorRT machine needs to build one).

Nothing here imports torch, onnx or TensorRT until an export runs.
"""

from studio.export.engine import TensorRTExport, export_tensorrt
from studio.export.onnx_export import EXPORTS_DIR, OnnxExport, export_onnx_version, safe_file_stem
from studio.export.tensorrt import ShapeRange, shape_ranges, trtexec_command, trtexec_text, unavailable_reason

FORMATS = ("onnx", "tensorrt")

__all__ = [
    "EXPORTS_DIR",
    "FORMATS",
    "OnnxExport",
    "ShapeRange",
    "TensorRTExport",
    "export_onnx_version",
    "export_tensorrt",
    "safe_file_stem",
    "shape_ranges",
    "trtexec_command",
    "trtexec_text",
    "unavailable_reason",
]
