"""PyTorch models whose layer shapes changed (pruned, shrunk), stored without pickle.

A changed model is kept as three files side by side: the user's architecture ``.py``
(unchanged, so the trust already given to its hash still holds), ``<stem>.structure.json``
(what differs from a fresh ``build_model()``: each changed layer's shape-defining attributes and
the shapes of its parameters and buffers) and ``<stem>.safetensors`` (the weights). Loading
builds the model, reshapes the recorded layers to empty tensors of the saved shapes, then loads
the weights strictly: nothing is unpickled, and a chain of steps (prune, then distil, then
quantize) can be reopened in any later session.

Only plain values (numbers, strings, booleans, tuples and lists of them) are recorded, and
only attributes that do not start with an underscore: a structure file can set a layer's
width, never run code or replace a method.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.api import ModelFormatError, first_line
from studio.core.architecture import import_architecture
from studio.core.files import atomic_path, atomic_write_text

if TYPE_CHECKING:
    import torch

    from studio.core.model_files import ModelFiles

STRUCTURE_SUFFIX = ".structure.json"
WEIGHTS_SUFFIX = ".safetensors"
_FORMAT = "studio-torch-structure"
_VERSION = 1
_SKIPPED_ATTRIBUTES = frozenset({"training"})
_PARAMETER, _BUFFER = "parameter", "buffer"


def structure_path(main: Path) -> Path:
    """Where the structure file of an architecture file sits: ``net.py`` → ``net.structure.json``."""
    return main.with_name(main.stem + STRUCTURE_SUFFIX)


def weights_path(main: Path) -> Path:
    """Where the weights saved beside a structure file sit: ``net.py`` → ``net.safetensors``."""
    return main.with_name(main.stem + WEIGHTS_SUFFIX)


def files_beside(main: Path, weights: Path | None) -> tuple[tuple[Path, ...], Path | None]:
    """The structure file (as an extra file) and default weights of a model saved by the studio.

    An architecture file without a structure file beside it is left as it is: its weights must
    be named, as before.
    """
    structure = structure_path(Path(main))
    if not structure.is_file():
        return (), weights
    return (Path(structure.name),), weights if weights is not None else weights_path(Path(main))


def find_structure(files: ModelFiles) -> Path | None:
    """The structure file among a model's files, if it has one."""
    return next((files.folder / p for p in files.extra if p.name.endswith(STRUCTURE_SUFFIX)), None)


# =============================================================================================
# Saving


def save_torch_model(module: torch.nn.Module, architecture: ModelFiles, out_dir: Path) -> Path:
    """Write ``module`` as architecture + structure + safetensors into ``out_dir``; the main path.

    The structure is described against a fresh ``build_model()`` of the architecture file, never
    against the model it was loaded from, so each step of a chain records its full difference.
    Everything is checked before the first file is written.
    """
    out_dir = Path(out_dir)
    main = out_dir / architecture.main.name
    fresh = build_fresh(architecture.main)
    modules, aliases = describe_structure(module, fresh), {}
    tensors = _weights_to_save(module, aliases)
    document = {
        "format": _FORMAT,
        "version": _VERSION,
        "architecture": architecture.main.name,
        "weights": weights_path(main).name,
        "modules": modules,
        "aliases": aliases,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_safetensors(tensors, weights_path(main))
    atomic_write_text(structure_path(main), json.dumps(document, indent=1, sort_keys=True) + "\n")
    with atomic_path(main) as tmp:
        shutil.copyfile(architecture.main, tmp)
    return main


def build_fresh(architecture: Path) -> torch.nn.Module:
    """A new, untrained model from the architecture file: the baseline a structure is measured against."""
    import torch

    namespace = import_architecture(Path(architecture))
    build = getattr(namespace, "build_model", None)
    if not callable(build):
        raise ModelFormatError(f"{architecture.name} has no build_model() function")
    try:
        module = build()
    except Exception as exc:
        raise ModelFormatError(f"build_model() in {architecture.name} failed: {first_line(exc)}") from None
    if not isinstance(module, torch.nn.Module):
        raise ModelFormatError(f"build_model() in {architecture.name} did not return a torch.nn.Module")
    return module


def describe_structure(module: torch.nn.Module, fresh: torch.nn.Module) -> dict[str, dict]:
    """Per layer name, the attributes and tensor shapes in which ``module`` differs from ``fresh``.

    A layer that build_model() does not make, or makes of another type, cannot be rebuilt from
    plain values, and is refused with its name.
    """
    fresh_layers = dict(fresh.named_modules())
    layers = dict(module.named_modules())
    for name, layer in layers.items():
        expected = fresh_layers.get(name)
        if expected is None:
            raise ModelFormatError(f"the changed model has a layer '{name}' that build_model() does not make")
        if type(expected).__qualname__ != type(layer).__qualname__:  # each import makes new classes
            raise ModelFormatError(
                f"layer '{name}' is a {type(layer).__name__} but build_model() makes a "
                f"{type(expected).__name__}; such a change cannot be saved as weights"
            )
    gone = [name for name in fresh_layers if name not in layers]
    if gone:
        raise ModelFormatError(f"build_model() makes a layer '{gone[0]}' that the changed model lacks")
    described = {}
    for name, layer in layers.items():
        entry = _layer_difference(layer, fresh_layers[name])
        if entry:
            described[name] = {"type": type(layer).__name__, **entry}
    return described


def _layer_difference(layer: torch.nn.Module, fresh: torch.nn.Module) -> dict:
    attributes = {
        key: _encode(value)
        for key, value in _plain_attributes(layer).items()
        if key not in vars(fresh) or not _same(vars(fresh)[key], value)
    }
    tensors = {}
    for kind, table, fresh_table in (
        (_PARAMETER, layer._parameters, fresh._parameters),
        (_BUFFER, layer._buffers, fresh._buffers),
    ):
        for key in [*table, *(k for k in fresh_table if k not in table)]:
            spec = _tensor_spec(table.get(key))
            if key not in fresh_table or spec != _tensor_spec(fresh_table[key]):
                _check_saved_buffer(layer, kind, key)
                tensors[key] = {"kind": kind, **(spec or {"shape": None})}
    entry = {}
    if attributes:
        entry["attributes"] = attributes
    if tensors:
        entry["tensors"] = tensors
    return entry


def _plain_attributes(layer: torch.nn.Module) -> dict[str, Any]:
    return {
        key: value
        for key, value in vars(layer).items()
        if not key.startswith("_") and key not in _SKIPPED_ATTRIBUTES and _is_plain(value)
    }


def _is_plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (tuple, list)):
        return all(_is_plain(v) for v in value)
    return False


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and _encode(a) == _encode(b)


def _encode(value: Any) -> Any:
    """JSON keeps lists, not tuples; a tuple is written as {"tuple": [...]} so it comes back one."""
    if isinstance(value, tuple):
        return {"tuple": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        if set(value) != {"tuple"} or not isinstance(value["tuple"], list):
            raise ModelFormatError(f"the structure file has an unreadable value at {where}")
        return tuple(_decode(v, where) for v in value["tuple"])
    if isinstance(value, list):
        return [_decode(v, where) for v in value]
    return value


def _tensor_spec(tensor: Any) -> dict | None:
    """Shape and dtype of a parameter or buffer; None for an empty slot (a bias=False layer)."""
    if tensor is None:
        return None
    return {"shape": [int(d) for d in tensor.shape], "dtype": str(tensor.dtype).removeprefix("torch.")}


def _check_saved_buffer(layer: torch.nn.Module, kind: str, key: str) -> None:
    if kind == _BUFFER and layer._buffers.get(key) is not None and key in layer._non_persistent_buffers_set:
        raise ModelFormatError(
            f"the buffer '{key}' of a {type(layer).__name__} changed shape but is not saved with the "
            "weights, so the changed model cannot be rebuilt"
        )


def _weights_to_save(module: torch.nn.Module, aliases: dict[str, str]) -> dict[str, torch.Tensor]:
    """The state_dict with tied tensors stored once; ``aliases`` gets each dropped name → kept name."""
    kept: dict[tuple, str] = {}
    tensors = {}
    for name, tensor in module.state_dict().items():
        key = _storage_key(tensor)
        if key in kept:
            aliases[name] = kept[key]
            continue
        kept[key] = name
        tensors[name] = tensor.detach().to("cpu").contiguous().clone()
    return tensors


def _storage_key(tensor: torch.Tensor) -> tuple:
    if tensor.numel() == 0:
        return ("empty", id(tensor))  # empty tensors share no data, whatever their pointer says
    return (
        tensor.device.type,
        tensor.untyped_storage().data_ptr(),
        tensor.storage_offset(),
        tuple(tensor.shape),
        tuple(tensor.stride()),
        tensor.dtype,
    )


def _write_safetensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})


# =============================================================================================
# Loading


def read_structure(path: Path) -> dict:
    """The structure file, checked for its format and version; ModelFormatError otherwise."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFormatError(f"the structure file {path.name} is missing") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelFormatError(f"{path.name} is not a readable structure file: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        raise ModelFormatError(f"{path.name} is not a studio structure file")
    version = document.get("version")
    if not isinstance(version, int) or version > _VERSION:
        raise ModelFormatError(f"{path.name} was written by a newer studio (format version {version})")
    if not isinstance(document.get("modules", {}), dict) or not isinstance(document.get("aliases", {}), dict):
        raise ModelFormatError(f"{path.name} is a damaged structure file")
    return document


def apply_structure(module: torch.nn.Module, structure: Mapping) -> None:
    """Reshape a fresh ``build_model()`` to the recorded structure; the weights are loaded after.

    Each recorded parameter or buffer becomes an empty tensor of the saved shape; every other
    place that held the same tensor (tied weights) receives the same new one, so ties survive.
    """
    layers = dict(module.named_modules())
    for name, entry in structure.get("modules", {}).items():
        layer = layers.get(name)
        if layer is None:
            raise ModelFormatError(f"the structure file names a layer '{name}' that the model does not have")
        if not isinstance(entry, dict):
            raise ModelFormatError(f"the structure file's entry for layer '{name}' is damaged")
        _set_attributes(layer, name, entry.get("attributes", {}))
    replaced: dict[int, tuple] = {}
    for name, entry in structure.get("modules", {}).items():
        tensors = entry.get("tensors", {})
        if not isinstance(tensors, dict):
            raise ModelFormatError(f"the structure file's tensors of layer '{name}' are damaged")
        for key, spec in tensors.items():
            _replace_tensor(layers[name], name, key, spec, replaced)
    _retie(module, replaced)
    for name in structure.get("modules", {}):
        refresh = getattr(layers[name], "_init_flat_weights", None)  # recurrent layers list their weights
        if callable(refresh):
            refresh()


def _set_attributes(layer: torch.nn.Module, name: str, attributes: Any) -> None:
    if not isinstance(attributes, dict):
        raise ModelFormatError(f"the structure file's attributes of layer '{name}' are damaged")
    for key, raw in attributes.items():
        value = _decode(raw, f"{name}.{key}")
        reserved = key in layer._parameters or key in layer._buffers or key in layer._modules
        if key.startswith("_") or reserved or callable(getattr(layer, key, None)) or not _is_plain(value):
            raise ModelFormatError(f"the structure file sets '{name}.{key}', which is not a layer setting")
        setattr(layer, key, value)


def _replace_tensor(
    layer: torch.nn.Module, name: str, key: str, spec: Any, replaced: dict[int, tuple]
) -> None:
    where = f"{name}.{key}" if name else key
    if not isinstance(spec, dict) or spec.get("kind") not in (_PARAMETER, _BUFFER):
        raise ModelFormatError(f"the structure file's entry for tensor '{where}' is damaged")
    tables = (layer._parameters, layer._buffers)
    if key.startswith("_") or (all(key not in t for t in tables) and hasattr(layer, key)):
        raise ModelFormatError(f"the structure file names a tensor '{where}' that is not a layer tensor")
    old = layer._parameters.get(key, layer._buffers.get(key))
    earlier = replaced.get(id(old))
    if earlier is not None and earlier[0] is old and _tensor_spec(earlier[1]) == _spec_of(spec):
        new = earlier[1]  # tied to a tensor already replaced: share the replacement
    else:
        new = _empty_like_spec(spec, where, old)
    if key in (layer._parameters if spec["kind"] == _PARAMETER else layer._buffers):
        setattr(layer, key, new)  # through the layer's own __setattr__, which some layers extend
    elif spec["kind"] == _PARAMETER:
        layer._buffers.pop(key, None)
        layer.register_parameter(key, new)
    else:
        layer._parameters.pop(key, None)
        layer.register_buffer(key, new)
    if old is not None and new is not None:
        replaced[id(old)] = (old, new)  # keeping ``old`` alive keeps its id unique


def _spec_of(spec: dict) -> dict | None:
    if spec.get("shape") is None:
        return None
    return {"shape": spec["shape"], "dtype": spec.get("dtype", "float32")}


def _empty_like_spec(spec: dict, where: str, old: Any) -> Any:
    import torch

    if spec.get("shape") is None:
        return None
    tensor = torch.empty(_shape(spec["shape"], where), dtype=_dtype(spec.get("dtype", "float32"), where))
    if spec["kind"] != _PARAMETER:
        return tensor
    requires_grad = old.requires_grad if isinstance(old, torch.nn.Parameter) else tensor.is_floating_point()
    return torch.nn.Parameter(tensor, requires_grad=requires_grad)


def _shape(raw: Any, where: str) -> list[int]:
    if not isinstance(raw, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in raw
    ):
        raise ModelFormatError(f"the structure file gives tensor '{where}' an invalid shape")
    return raw


def _dtype(name: Any, where: str) -> torch.dtype:
    import torch

    dtype = getattr(torch, name, None) if isinstance(name, str) else None
    if not isinstance(dtype, torch.dtype):
        raise ModelFormatError(f"the structure file gives tensor '{where}' an unknown type {name!r}")
    return dtype


def _retie(module: torch.nn.Module, replaced: dict[int, tuple]) -> None:
    """Point every other holder of a replaced tensor at its replacement (tied weights)."""
    if not replaced:
        return
    for layer in module.modules():
        for table in (layer._parameters, layer._buffers):
            for key, tensor in table.items():
                old, new = replaced.get(id(tensor), (None, None))
                if old is not None and tensor is old:
                    table[key] = new


def apply_structure_file(module: torch.nn.Module, structure_file: Path) -> dict[str, str]:
    """Reshape a fresh ``build_model()`` as the structure file records; return its aliases.

    The weights are read and loaded strictly by the caller afterwards (:mod:`studio.core.models`
    does, as for any architecture file), with :func:`restore_aliases` applied to them first.
    """
    structure = read_structure(structure_file)
    apply_structure(module, structure)
    return dict(structure.get("aliases", {}))


def restore_aliases(state: dict[str, Any], aliases: Mapping[str, str], weights_name: str) -> None:
    """Put back in ``state`` the tied names dropped at save (``alias`` shares ``kept``'s tensor)."""
    for alias, kept in aliases.items():
        if kept not in state:
            raise ModelFormatError(f"{weights_name} lacks '{kept}', which '{alias}' shares")
        state[alias] = state[kept]
