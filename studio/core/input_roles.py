"""What each of a model's inputs is: one row per sample, a state, or a fixed value.

Most models take a batch of samples on every input. Streaming and audio models do not: a
voice-activity network takes ``input[batch, 512]`` with a recurrent ``state[2, batch, 128]`` and a
scalar sample rate ``sr``. Taking the state's 2 for a batch size, or feeding one ``sr`` per sample,
breaks every measurement and every step. So each input has a role:

- ``batch``: samples, one row per sample along dim 0 (read from the dataset);
- ``state``: zeros of the input's shape, the start of a stream, the same on every run;
- a number such as ``16000``: the input always holds that value.

Roles are inferred from the shapes and can be set by the user (``--input-spec sr=16000``). The
studio then presents such a model as taking only its batch inputs: a runner fills the others in
(``RoleFilledRunner``), so measurements, the result gate and techniques see one kind of model.
A model with a state runs one sample at a time, since its state holds one stream.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np

from studio.api import StudioError, TensorSpec

BATCH, STATE = "batch", "state"


class InputValueNeeded(StudioError):
    """A single-number input (a sample rate, say) whose value the shapes cannot tell."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"the model's input '{name}' is a single number the studio cannot guess; "
            f"give its value with --input-spec {name}=VALUE"
        )
        self.input_name = name


def parse_input_spec(text: str | None) -> dict[str, str]:
    """``"sr=16000,state=state"`` → ``{"sr": "16000", "state": "state"}``; one sentence when malformed."""
    roles: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, role = (s.strip() for s in part.partition("="))
        if not sep or not name or not role:
            raise StudioError(
                f"'{part.strip()}' is not an input role: write NAME=batch, NAME=state or NAME=VALUE "
                "(for example sr=16000)"
            )
        roles[name] = checked_role(name, role)
    return roles


def checked_role(name: str, role: str) -> str:
    """``role`` as stored (batch, state or a number), or one sentence saying what it may be."""
    role = role.lower() if role.lower() in (BATCH, STATE) else role
    if role in (BATCH, STATE):
        return role
    try:
        value = float(role)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise StudioError(f"the role of input '{name}' must be batch, state or a number, not '{role}'")
    return role


def infer_roles(specs: Sequence[TensorSpec]) -> dict[str, str]:
    """Roles read from shapes alone. Unknown values of single-number inputs are left ``""``.

    The batch dimension is the first input's free leading dimension (or, when every leading
    dimension is fixed, the first input's): an input whose leading dimension differs is a state;
    a single number is a value.
    """
    ranked = [s for s in specs if s.shape]
    free = [s for s in ranked if not _fixed(s.shape[0])]
    lead = (free or ranked or [None])[0]
    roles = {}
    for spec in specs:
        if not spec.shape:
            roles[spec.name] = ""
        elif lead is None or _same_lead(spec.shape[0], lead.shape[0]):
            roles[spec.name] = BATCH
        else:
            roles[spec.name] = STATE
    return roles


def _fixed(dim: object) -> bool:
    return isinstance(dim, int) and dim > 0


def _same_lead(a: object, b: object) -> bool:
    return (not _fixed(a) and not _fixed(b)) or a == b


def assign_roles(
    specs: Sequence[TensorSpec], given: Mapping[str, str] | None = None, *, require_values: bool = True
) -> list[TensorSpec]:
    """The specs with their roles: inferred, then what the user gave, checked against the model.

    A single-number input whose value nobody gave is refused, or (``require_values=False``, for
    describing a model) left with the role ``""``.
    """
    given = dict(given or {})
    names = [s.name for s in specs]
    unknown = [n for n in given if n not in names]
    if unknown:
        raise StudioError(f"the model has no input '{unknown[0]}'; its inputs are {', '.join(names)}")
    inferred = infer_roles(specs)
    roles = {
        name: given.get(name) or _kept(spec) or inferred[name]
        for name, spec in zip(names, specs, strict=True)
    }
    for spec in specs:
        role = roles[spec.name]
        if role == "" and require_values:
            raise InputValueNeeded(spec.name)
        if not spec.shape and role in (BATCH, STATE):
            raise StudioError(
                f"the model's input '{spec.name}' is a single number: give it a value, not {role}"
            )
    if not any(roles[n] == BATCH for n in names):
        raise StudioError("at least one of the model's inputs must take the samples (role batch)")
    return [dataclasses.replace(spec, role=roles[spec.name]) for spec in specs]


def _kept(spec: TensorSpec) -> str | None:
    """A role a spec already carries other than the default: a version's, inherited."""
    return None if spec.role == BATCH else spec.role


def roles_of(specs: Sequence[TensorSpec]) -> dict[str, str]:
    return {spec.name: spec.role for spec in specs}


def inherit_roles(specs: Sequence[TensorSpec], parent: Sequence[TensorSpec]) -> list[TensorSpec]:
    """A step's output takes its parent's roles, input by input (the gate made sure they match)."""
    roles = roles_of(parent)
    return [dataclasses.replace(s, role=roles.get(s.name, s.role)) for s in specs]


def has_fixed_inputs(roles: Mapping[str, str] | None) -> bool:
    return bool(roles) and any(role != BATCH for role in roles.values())


def describe_role(role: str) -> str:
    """How a role reads after the input's name: ``batch``, ``= zeros (state)``, ``= 16000``, or what
    is still to give."""
    if role == BATCH:
        return role
    if role == STATE:
        return "= zeros (state)"
    return f"= {role}" if role else "a value to give (--input-spec)"


class RoleFilledRunner:
    """A runner that takes only the batch inputs of a model and fills in its states and values.

    ``inputs`` lists the batch inputs; with a state among the others they take one sample per run
    (leading dimension 1), which the rest of the studio honours as a fixed batch.
    """

    def __init__(self, runner, roles: Mapping[str, str]) -> None:
        self._runner = runner
        self.runtime, self.device = runner.runtime, runner.device
        self.outputs = runner.outputs
        specs = {s.name: s for s in runner.inputs}
        missing = [n for n in specs if n not in roles]
        if missing:
            raise StudioError(f"no role is known for the model's input '{missing[0]}'")
        one_stream = any(roles[n] == STATE for n in specs)
        self.one_stream = one_stream
        self.inputs = [
            dataclasses.replace(s, shape=(1, *s.shape[1:])) if one_stream else s
            for s in runner.inputs
            if roles[s.name] == BATCH
        ]
        self._fixed = {
            name: fixed_array(spec, roles[name]) for name, spec in specs.items() if roles[name] != BATCH
        }

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self._runner.run({**feeds, **self._fixed})

    def close(self) -> None:
        self._runner.close()

    def __getattr__(self, name: str):  # provider, and whatever else a runtime's runner tells
        return getattr(self._runner, name)


def fixed_array(spec: TensorSpec, role: str) -> np.ndarray:
    """The array fed to a non-batch input: zeros for a state (free dimensions 1), else the value."""
    shape = tuple(d if _fixed(d) else 1 for d in spec.shape)
    dtype = np.dtype(spec.dtype)
    if role == STATE:
        return np.zeros(shape, dtype=dtype)
    value = float(role)
    if dtype.kind in "iu" and not value.is_integer():
        raise StudioError(f"the model's input '{spec.name}' takes whole numbers ({dtype}), not {role}")
    return np.full(shape, value, dtype=dtype)


def with_roles(runner, roles: Mapping[str, str] | None):
    """``runner`` itself when every input takes samples, else one that fills the others in.

    Roles given for inputs this model has win over what its shapes say; names it lacks are
    ignored, so a step's scratch model with its parent's roles is run as the parent is.
    """
    names = [s.name for s in runner.inputs]
    merged = {**infer_roles(runner.inputs), **{n: r for n, r in (roles or {}).items() if n in names}}
    if not has_fixed_inputs(merged):
        return runner
    unknown = [n for n, r in merged.items() if r == ""]
    if unknown:
        raise InputValueNeeded(unknown[0])
    return RoleFilledRunner(runner, merged)
