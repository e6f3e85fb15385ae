"""Finding techniques (entry points) and running one on a model, in whatever process calls it.

Built-in techniques and third-party ones are found the same way, through the
``studio.techniques`` entry-point group; a plugin is imported only when it is listed or used,
and one that fails to import is reported with its error while the others keep working.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from studio.api import ENTRY_POINT_GROUP, ParameterError, Params, StudioError, Technique, TechniqueResult
from studio.core.models import ModelFiles

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PluginEntry:
    """One registered technique: loaded, or the reason it could not be."""

    name: str
    target: str  # "package.module:Class"
    distribution: str | None
    technique: Technique | None
    error: str | None

    def to_dict(self) -> dict:
        t = self.technique
        return {
            "name": self.name,
            "target": self.target,
            "distribution": self.distribution,
            "ok": t is not None,
            "error": self.error,
            "title": None if t is None else t.title,
            "help": None if t is None else t.help,
            "accepts": None if t is None else list(t.accepts),
            "produces": None if t is None else t.produces,
            "dataset": None if t is None else t.dataset,
            "params": None if t is None else t.Params.model_json_schema(),
        }


_extra: dict[str, Technique] = {}  # registered in-process (tests, embedding applications)


def register(technique: Technique) -> None:
    """Make a technique available without an entry point (an application embedding the studio)."""
    _extra[technique.name] = technique


def discover() -> list[PluginEntry]:
    entries = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        entries.append(_load(ep.name, ep.value, dist.name if dist else None, ep.load))
    entries += [PluginEntry(t.name, type(t).__qualname__, None, t, None) for t in _extra.values()]
    return entries


def _load(name: str, target: str, dist: str | None, loader: Callable[[], Any]) -> PluginEntry:
    try:
        obj = loader()
        technique = obj() if isinstance(obj, type) else obj
        if not isinstance(technique, Technique):
            raise TypeError(f"{target} is not a studio.api.Technique")
        if technique.name != name:
            raise TypeError(f"{target} calls itself '{technique.name}' but is registered as '{name}'")
    except Exception as exc:  # a broken plugin must not break the studio
        log.debug("technique %s (%s) could not be loaded", name, target, exc_info=True)
        return PluginEntry(name, target, dist, None, f"{type(exc).__name__}: {exc}")
    return PluginEntry(name, target, dist, technique, None)


def get_technique(name: str) -> Technique:
    if name in _extra:
        return _extra[name]
    matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not matches:
        known = ", ".join(sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)} | set(_extra)))
        raise StudioError(f"there is no technique named '{name}'; known techniques: {known}")
    entry = _load(name, matches[0].value, None, matches[0].load)
    if entry.technique is None:
        raise StudioError(f"the technique '{name}' could not be loaded ({entry.error})")
    return entry.technique


def parse_params(technique: Technique, values: dict[str, Any] | Params | None) -> Params:
    """Validate parameters against the technique's schema; the first problem as one sentence."""
    if isinstance(values, technique.Params):
        return values
    try:
        return technique.Params.model_validate(dict(values or {}))
    except ValidationError as exc:
        sentence = describe_validation_error(exc)
        first = exc.errors()[0]
        if first["type"] == "extra_forbidden" and len(first["loc"]) == 1:  # a typo: say what is right
            known = ", ".join(f.alias or name for name, f in technique.Params.model_fields.items())
            sentence += f"; its parameters are {known}" if known else "; it takes no parameters"
        raise ParameterError(f"{technique.name}: {sentence}") from None


def describe_validation_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "parameters"
    if first["type"] == "extra_forbidden":
        return f"there is no parameter '{where}'"
    value = first.get("input")
    shown = "" if isinstance(value, dict) else f" (got {value!r})"
    return f"{where}: {first['msg'][0].lower()}{first['msg'][1:]}{shown}"


def parse_assignments(items: Iterable[str]) -> dict[str, Any]:
    """``key=value`` strings from the command line; values read as YAML (numbers, lists, true)."""
    values: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"'{item}' is not key=value")
        try:
            values[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            values[key.strip()] = raw
    return values


def check_fits(technique: Technique, kind: str, has_dataset: bool, has_labels: bool) -> None:
    """The refusals that need no work: a format the technique does not take, a missing dataset."""
    if kind not in technique.accepts:
        takes = " or ".join("ONNX" if k == "onnx" else "PyTorch" for k in technique.accepts)
        given = "ONNX" if kind == "onnx" else "PyTorch"
        raise ParameterError(f"{technique.name} takes {takes} models; this one is {given}")
    if technique.dataset in ("inputs", "labels") and not has_dataset:
        raise ParameterError(
            f"{technique.name} needs a dataset: pass --data (for example --data digits)",
            window=f"{technique.name} needs a dataset: choose one under Dataset (for example the digits sample)",
        )
    if technique.dataset == "labels" and not has_labels:
        raise ParameterError(f"{technique.name} needs a dataset with labels")


def run_local(
    technique: Technique | str,
    model: Path | ModelFiles,
    *,
    params: dict[str, Any] | Params | None = None,
    dataset: Any = None,
    output_dir: Path,
    device: str = "cpu",
    threads: int | None = None,
    trusted: bool = False,
    input_shapes: list[tuple[int, ...]] | None = None,
    input_roles: Mapping[str, str] | None = None,
    progress: Callable[[float, str], None] | None = None,
    cancel_requested: Callable[[], bool] | None = None,
    resolve: Callable[[str], Any] | None = None,
) -> TechniqueResult:
    """Run a technique here, in this process: the worker's entry and the tests' harness.

    ``model`` is the main file of the input model (its files beside it); ``dataset`` a
    DatasetSpec or None; ``resolve`` maps a version reference to ``(files, input_shapes[, input_roles])``
    for ``ctx.model_ref``; ``input_roles`` says what each input is fed (studio.core.input_roles).
    """
    from studio.core.context import LocalContext

    tech = get_technique(technique) if isinstance(technique, str) else technique
    parsed = parse_params(tech, params)
    with LocalContext(
        model,
        dataset=dataset,
        output_dir=output_dir,
        device=device,
        threads=threads,
        trusted=trusted,
        input_shapes=input_shapes,
        input_roles=input_roles,
        progress=progress,
        cancel_requested=cancel_requested,
        resolve=resolve,
        log=logging.getLogger(f"studio.technique.{tech.name}"),
    ) as ctx:
        split = ctx.dataset("validation")
        check_fits(tech, ctx.model.kind, split is not None, split is not None and split.labels is not None)
        tech.check(parsed, ctx)
        ctx.progress(0.0, "starting")
        result = tech.run(parsed, ctx)
        ctx.check_output(result)
        ctx.progress(1.0, "done")
        return result
