"""Old exports brought up to what ONNX Runtime's quantizer writes, before it sees them.

Two shapes of older files break the quantizer rather than the float model:

* IR version 3 files (the first model zoo) list every weight as a graph input too. From IR 4 on,
  such an input is one the caller may override, so once the quantizer replaces a weight by its
  8-bit copy the old name is left as a required input nobody feeds. The weights are taken out of
  the input list, and the IR version raised to what the opset needs.
* Files below opset 13: per-channel QDQ writes ``DequantizeLinear`` with an ``axis``, which only
  exists from opset 13, so the result does not load. The opset is converted to 13 first; where the
  converter cannot, the caller quantizes with one scale per tensor, which opset 10 already has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from studio.api import first_line

if TYPE_CHECKING:
    import onnx

PER_CHANNEL_OPSET = 13  # the first opset whose DequantizeLinear takes an axis
DEFAULT_DOMAINS = ("", "ai.onnx")


@dataclass
class Modernized:
    """What was changed, and whether per-channel scales can be written into this model."""

    notes: list[str] = field(default_factory=list)
    per_channel_possible: bool = True


def modernize(model: onnx.ModelProto) -> Modernized:
    """Drop weights from the graph inputs and convert the opset to 13, in place where possible."""
    result = Modernized()
    old_ir = model.ir_version
    moved = drop_initializer_inputs(model)
    if moved:
        result.notes.append(
            f"{moved} weight(s) were also listed as graph inputs, as old exports do; they were made plain "
            "weights, so that the quantized model asks only for its real inputs."
        )
    folded = constants_to_initializers(model)
    if folded:
        result.notes.append(
            f"{folded} weight(s) held in Constant nodes were made plain weights, so that they could be quantized."
        )
    old = default_opset(model)
    if old is not None and old < PER_CHANNEL_OPSET:
        problem = upgrade_opset(model)
        result.per_channel_possible = problem is None
        result.notes.append(
            f"The model's opset {old} was converted to {PER_CHANNEL_OPSET}, the first with per-channel "
            "quantization."
            if problem is None
            else f"The model's opset {old} could not be converted to {PER_CHANNEL_OPSET} ({problem}); "
            f"it was quantized at opset {old}."
        )
    if model.ir_version != old_ir:
        result.notes.append(f"The file's IR version was raised from {old_ir} to {model.ir_version}.")
    return result


def drop_initializer_inputs(model: onnx.ModelProto) -> int:
    """Remove weights from the graph inputs; returns how many were listed there."""
    weights = {t.name for t in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in weights]
    moved = len(model.graph.input) - len(keep)
    if moved:
        del model.graph.input[:]
        model.graph.input.extend(keep)
    if model.ir_version < 4:
        model.ir_version = max(min_ir_version(model), 4)
    return moved


def constants_to_initializers(model: onnx.ModelProto, *, min_elements: int = 2) -> int:
    """Move float tensors held by top-level Constant nodes into the initializers; returns how many.

    Some exporters write every weight as a Constant node. The quantizers and the float16
    converter look for weights among initializers only: left as nodes, they are not quantized,
    or (float16) stay float32 beside converted operators and the model no longer loads.
    """
    from onnx import TensorProto

    kept, moved = [], 0
    for node in model.graph.node:
        value = (
            _float_constant(node) if node.op_type == "Constant" and node.domain in DEFAULT_DOMAINS else None
        )
        if value is None or value.data_type != TensorProto.FLOAT or _elements(value.dims) < min_elements:
            kept.append(node)
            continue
        tensor = model.graph.initializer.add()
        tensor.CopyFrom(value)
        tensor.name = node.output[0]
        moved += 1
    if moved:
        del model.graph.node[:]
        model.graph.node.extend(kept)
    return moved


def _float_constant(node: onnx.NodeProto) -> onnx.TensorProto | None:
    """The tensor a Constant node holds, as ``value`` or as a list in ``value_floats``."""
    import numpy as np
    from onnx import numpy_helper

    for attr in node.attribute:
        if attr.name == "value" and attr.HasField("t"):
            return attr.t
        if attr.name == "value_floats":
            return numpy_helper.from_array(np.asarray(attr.floats, dtype=np.float32))
    return None


def _elements(dims) -> int:
    count = 1
    for d in dims:
        count *= d
    return count


def default_opset(model: onnx.ModelProto) -> int | None:
    return next((o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS), None)


def upgrade_opset(model: onnx.ModelProto) -> str | None:
    """Convert to opset 13 in place; the converter's complaint when it cannot, else None."""
    import onnx

    try:
        converted = onnx.version_converter.convert_version(model, PER_CHANNEL_OPSET)
    except Exception as exc:  # the converter lacks adapters for some operators and domains
        return first_line(exc)[:160]
    converted.ir_version = max(converted.ir_version, min_ir_version(converted))
    model.CopyFrom(converted)
    return None


def min_ir_version(model: onnx.ModelProto) -> int:
    """The lowest IR version the model's opsets allow; a custom domain asks for nothing more."""
    import onnx

    return onnx.helper.find_min_ir_version_for(list(model.opset_import), ignore_unknown=True)
