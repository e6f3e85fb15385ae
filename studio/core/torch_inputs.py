"""What a PyTorch model takes as input, and tensors that fit it.

A torch module does not say what it takes, so the answer comes from where it was opened from:
an exported program's example inputs, an architecture file's ``example_inputs()`` or
``INPUT_SHAPE(S)``, or shapes the user passed. Dim 0 is the batch.
"""

from __future__ import annotations

import ast
import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.api import ModelFormatError, TensorSpec, first_line
from studio.core.formats.origins import Origin, origin_of
from studio.core.model_files import ModelFiles, ModelFormat

if TYPE_CHECKING:
    import torch

_Declared = list[tuple[tuple[int, ...], str]]  # (shape, dtype) of each input


def default_input_names(count: int) -> list[str]:
    return ["input"] if count == 1 else [f"input_{i}" for i in range(count)]


def default_output_names(count: int) -> list[str]:
    return ["output"] if count == 1 else [f"output_{i}" for i in range(count)]


def torch_input_specs(
    files: ModelFiles, module: torch.nn.Module, input_shapes: Sequence[tuple[int, ...]] | None = None
) -> list[TensorSpec]:
    """What the module takes. Dim 0 is the batch: named "batch" wherever the model accepts any."""
    _refuse_non_tensor_arguments(files, module)
    origin = origin_of(module)
    declared = _declared_inputs(files, origin)
    if input_shapes:
        dtypes = [d for _, d in declared] if declared and len(declared) == len(input_shapes) else None
        declared = [(tuple(s), dtypes[i] if dtypes else "float32") for i, s in enumerate(input_shapes)]
    if not declared:
        raise ModelFormatError(
            f"{files.main.name} does not say what input it takes; pass --input-shape 1,3,224,224"
        )
    names = default_input_names(len(declared))
    return [
        TensorSpec(name, _batch_named(shape, origin.dynamic_batch), dtype)
        for name, (shape, dtype) in zip(names, declared, strict=True)
    ]


def _refuse_non_tensor_arguments(files: ModelFiles, module: torch.nn.Module) -> None:
    """A scripted ``forward(x, sr: int)`` cannot be fed arrays or exported with a tensor in that
    place; say so at once, with what works, rather than fail on a missing argument later."""
    schema = getattr(getattr(module, "forward", None), "schema", None)
    if schema is None:
        return
    import torch

    for argument in schema.arguments[1:]:
        if not isinstance(argument.type, torch.TensorType):
            raise ModelFormatError(
                f"{files.main.name} takes '{argument.name}' as {argument.type}, not as a tensor; the studio "
                "feeds models tensors: script it with a tensor there, or export it to ONNX, where a "
                f"single-number input is given with --input-spec {argument.name}=VALUE"
            )


def _batch_named(shape: tuple[int, ...], dynamic: bool) -> tuple[int | str, ...]:
    return ("batch", *shape[1:]) if dynamic and shape else tuple(shape)


def _declared_inputs(files: ModelFiles, origin: Origin) -> _Declared | None:
    if origin.example is not None:
        return _describe_tensors(origin.example)
    if files.format is not ModelFormat.TORCH_ARCHITECTURE:
        return None
    if origin.namespace is not None:
        return _declared_by_namespace(files.main, origin.namespace)
    return _declared_by_source(files.main)


def _declared_by_namespace(path: Path, namespace: Any) -> _Declared | None:
    make = getattr(namespace, "example_inputs", None)
    if callable(make):
        try:
            example = make()
        except Exception as exc:
            raise ModelFormatError(f"example_inputs() in {path.name} failed: {first_line(exc)}") from None
        return _describe_tensors(example if isinstance(example, (tuple, list)) else (example,))
    return _shapes_constant(
        path, getattr(namespace, "INPUT_SHAPES", None), getattr(namespace, "INPUT_SHAPE", None)
    )


def _declared_by_source(path: Path) -> _Declared | None:
    """INPUT_SHAPE(S) read from the file's text, for a module whose namespace is not at hand."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=path.name)
    constants: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            with contextlib.suppress(ValueError, SyntaxError):
                constants[node.targets[0].id] = ast.literal_eval(node.value)
    return _shapes_constant(path, constants.get("INPUT_SHAPES"), constants.get("INPUT_SHAPE"))


def _shapes_constant(path: Path, shapes: Any, shape: Any) -> _Declared | None:
    if shapes is None and shape is None:
        return None
    try:
        listed = (
            [tuple(int(d) for d in s) for s in shapes]
            if shapes is not None
            else [tuple(int(d) for d in shape)]
        )
    except (TypeError, ValueError):
        raise ModelFormatError(
            f"INPUT_SHAPE(S) in {path.name} is not a shape like (1, 3, 224, 224)"
        ) from None
    return [(s, "float32") for s in listed]


def _describe_tensors(tensors: Sequence[Any]) -> _Declared:
    import torch

    described = []
    for t in tensors:
        if not isinstance(t, torch.Tensor):
            raise ModelFormatError(f"the model's example input is a {type(t).__name__}, not a tensor")
        described.append((tuple(int(d) for d in t.shape), str(t.dtype).removeprefix("torch.")))
    return described


def torch_example_inputs(specs: Sequence[TensorSpec], batch: int = 1) -> tuple[torch.Tensor, ...]:
    """Tensors that fit ``specs``: random floats, zeros for integers (valid indices for embeddings);
    a state or value input (see studio.core.input_roles) gets what it is always fed."""
    import torch

    from studio.core.input_roles import BATCH, fixed_array

    generator = torch.Generator().manual_seed(0)
    tensors = []
    for spec in specs:
        if spec.role != BATCH:
            tensors.append(torch.from_numpy(fixed_array(spec, spec.role)))
            continue
        shape = [
            batch if i == 0 and not isinstance(d, int) else (d if isinstance(d, int) else 1)
            for i, d in enumerate(spec.shape)
        ]
        dtype = getattr(torch, spec.dtype)
        if dtype.is_floating_point:
            tensors.append(torch.randn(shape, generator=generator).to(dtype))
        else:
            tensors.append(torch.zeros(shape, dtype=dtype))
    return tuple(tensors)
