"""Recipe files: an ordered list of technique steps, each feeding the next, checked before any runs.

```yaml
model: baseline          # optional: the version to start from (the command line may override)
data: digits             # optional: the dataset every step uses unless it names its own
steps:
  - technique: prune.structured
    params: {ratio: 0.5, finetune_epochs: 3}
    name: pruned         # optional: the new version's name
  - technique: quantize.static
```

Every problem is reported with the file, the line and the reason, and nothing runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from studio.api import Params, StudioError
from studio.core.techniques import describe_validation_error, get_technique

_TOP_KEYS = {"model", "data", "steps", "name", "description"}
_STEP_KEYS = {"technique", "params", "data", "name"}


class RecipeError(StudioError):
    """A recipe that cannot run as written."""


@dataclass(frozen=True)
class RecipeStep:
    technique: str
    params: Params
    data: str | None
    name: str | None
    line: int


@dataclass(frozen=True)
class Recipe:
    path: Path | None
    steps: list[RecipeStep]
    model: str | None = None
    data: str | None = None
    name: str | None = None
    description: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    def to_yaml(self) -> str:
        return dump_recipe(self)


def load_recipe(path: Path) -> Recipe:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"cannot read the recipe {path}: {exc}") from None
    return parse_recipe(text, source=path)


def parse_recipe(text: str, *, source: Path | None = None) -> Recipe:
    where = str(source) if source else "recipe"
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RecipeError(f"{where}{line}: not valid YAML ({problem})") from None
    if root is None or not isinstance(root, yaml.MappingNode):
        raise RecipeError(f"{where}: a recipe is a mapping with a 'steps' list")
    data = yaml.safe_load(text)
    top = _keys(root)
    for key, node in top.items():
        if key not in _TOP_KEYS:
            raise _at(where, node, f"unknown key '{key}' (allowed: {', '.join(sorted(_TOP_KEYS))})")
    steps_node = _values(root).get("steps")
    if steps_node is None or not isinstance(steps_node, yaml.SequenceNode) or not steps_node.value:
        raise _at(where, top.get("steps", root), "'steps' must be a non-empty list of technique steps")
    steps = [
        _step(where, node, value, index)
        for index, (node, value) in enumerate(zip(steps_node.value, data["steps"], strict=True), 1)
    ]
    _check_chain(where, steps, steps_node)
    for key in ("model", "data", "name"):
        if key in data and data[key] is not None and not isinstance(data[key], (str, int)):
            raise _at(where, top[key], f"'{key}' must be a name")
    return Recipe(
        path=source,
        steps=steps,
        model=None if data.get("model") is None else str(data["model"]),
        data=data.get("data"),
        name=data.get("name"),
        description=data.get("description") or "",
        raw=data,
    )


def _step(where: str, node: yaml.Node, value: Any, index: int) -> RecipeStep:
    if not isinstance(node, yaml.MappingNode):
        raise _at(where, node, f"step {index} must be a mapping with a 'technique'")
    keys = _keys(node)
    for key, key_node in keys.items():
        if key not in _STEP_KEYS:
            raise _at(
                where,
                key_node,
                f"step {index}: unknown key '{key}' (allowed: {', '.join(sorted(_STEP_KEYS))})",
            )
    if "technique" not in keys:
        raise _at(where, node, f"step {index} names no technique")
    name = str(value["technique"])
    try:
        technique = get_technique(name)
    except StudioError as exc:
        raise _at(where, keys["technique"], f"step {index}: {exc}") from None
    params = value.get("params") or {}
    if not isinstance(params, dict):
        raise _at(where, keys.get("params", node), f"step {index}: 'params' must be a mapping")
    from pydantic import ValidationError

    try:
        parsed = technique.Params.model_validate(params)
    except ValidationError as exc:
        first = exc.errors()[0]["loc"]
        params_node = _values(node).get("params")
        param_nodes = _keys(params_node) if isinstance(params_node, yaml.MappingNode) else {}
        at = param_nodes.get(str(first[0]), keys.get("params", node)) if first else node
        raise _at(where, at, f"step {index} ({name}): {describe_validation_error(exc)}") from None
    return RecipeStep(name, parsed, value.get("data"), value.get("name"), node.start_mark.line + 1)


def _check_chain(where: str, steps: list[RecipeStep], node: yaml.Node) -> None:
    """Each step must accept what the one before it produces."""
    for before, after in zip(steps, steps[1:], strict=False):
        produced = get_technique(before.technique).produces
        accepts = get_technique(after.technique).accepts
        if produced not in accepts:
            kind = "an ONNX" if produced == "onnx" else "a PyTorch"
            raise RecipeError(
                f"{where}, line {after.line}: {after.technique} cannot take {kind} model, "
                f"which is what {before.technique} (line {before.line}) produces"
            )


def _keys(node: yaml.MappingNode) -> dict[str, yaml.Node]:
    """Each key's node (for its line number)."""
    return {str(k.value): k for k, _ in node.value}


def _values(node: yaml.MappingNode) -> dict[str, yaml.Node]:
    return {str(k.value): v for k, v in node.value}


def _at(where: str, node: yaml.Node, message: str) -> RecipeError:
    return RecipeError(f"{where}, line {node.start_mark.line + 1}: {message}")


def dump_recipe(recipe: Recipe) -> str:
    """The recipe as YAML (what the window's recipe editor saves)."""
    doc: dict[str, Any] = {}
    for key in ("name", "description", "model", "data"):
        value = getattr(recipe, key)
        if value:
            doc[key] = value
    doc["steps"] = []
    for step in recipe.steps:
        entry: dict[str, Any] = {"technique": step.technique}
        changed = step.params.model_dump(mode="json", exclude_defaults=True)
        if changed:
            entry["params"] = changed
        if step.data:
            entry["data"] = step.data
        if step.name:
            entry["name"] = step.name
        doc["steps"].append(entry)
    return yaml.safe_dump(doc, sort_keys=False)
