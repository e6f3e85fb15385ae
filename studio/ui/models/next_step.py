"""One sentence under the lineage: what to do next with the version on screen (no Qt).

Read from the figures every view already shows, with the same verdicts: the paired speed-up
against the parent (studio.core.timing) and the result gate (studio.core.gate). The hint points
the user at the step that answers the version's open question: a smaller model that is not
faster, a result that does not follow its parent, a version nobody has measured yet.
"""

from __future__ import annotations

from collections.abc import Sequence

from studio import tables
from studio.ui.models.figures import VersionFigures

# Why a technique's result may be smaller but not faster, and what usually is.
_NOT_FASTER = {
    "prune.magnitude": "zeros in dense layers are still multiplied: prune.structured removes whole "
    "channels, and quantize.dynamic needs no data",
    "prune.structured": "the layers it thinned may not be where the time goes: measure with per-layer "
    "timing (studio bench --layers), or quantize it",
    "quantize.fp16": "float16 pays on GPUs, not on a CPU: export it for TensorRT, or try quantize.dynamic",
    "quantize.dynamic": "quantizing activations at run time costs what the INT8 arithmetic saves here: "
    "quantize.static calibrates them once",
    "quantize.static": "the INT8 kernels are not faster for these layers here: try quantize.auto, which "
    "keeps the sensitive ones in float, or a larger batch",
    "quantize.auto": "the layers it kept in float dominate: lower its cosine floor, or prune first",
    "distill": "a narrower student may not be faster at batch 1 on this runtime: quantize it",
}


def next_step(fig: VersionFigures | None, figures: Sequence[VersionFigures]) -> str | None:
    """The hint for ``fig``, or None when there is nothing to suggest."""
    if fig is None:
        return None
    name = f"v{fig.id}"
    if fig.latency_ms is None:
        return f"Measure {name} (Ctrl+M) to see its accuracy, size and speed before you build on it."
    if fig.collapsed:
        parent = f"v{fig.parent_id}"
        return (
            f"{name} follows {parent} poorly ({fig.gate_figure}). Try gentler settings, or distill {name} "
            f"from {parent} to recover what it lost."
        )
    if fig.is_root:
        return (
            f"Next: quantize.dynamic on {name} (no data needed, the quickest gain on a CPU), or "
            "prune.structured or distill with a dataset."
        )
    if fig.not_faster:
        why = _NOT_FASTER.get(fig.technique or "", "a smaller model is not always a faster one")
        return f"{name} is not faster than v{fig.parent_id}: {tables.speed_text(fig.speed)}. {why[:1].upper()}{why[1:]}."
    speed = tables.speed_cell(fig.speed)
    if fig.speed and speed != tables.MISSING:
        children = [f for f in figures if f.parent_id == fig.id]
        then = "compare its children" if children else "stack another technique on it"
        return (
            f"{name} is {speed} faster than v{fig.parent_id} and follows it: export it (Ctrl+E), or {then}."
        )
    return None
