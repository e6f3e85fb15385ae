"""What the studio lays over Netron's drawing: heat colours, diff colours, the metrics attachment.

Plain data and colour arithmetic, no widgets: the graph view paints what these return, and the
same per-node figures go to Netron's own node sidebar as a ``netron:attachment`` document.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from studio.core.graph_diff import ADDED, PRECISION, REMOVED, SHAPE, UNCHANGED

if TYPE_CHECKING:
    from studio.ui.version_view import VersionView

# A sequential scale from pale yellow (least) to dark red (most): readable for colour-blind eyes,
# and never confused with the diff colours, which are hues of their own.
HEAT_STOPS = ((255, 247, 188), (254, 196, 79), (240, 112, 40), (204, 36, 29), (110, 10, 30))
NO_FIGURE = ("#e4e4e4", "#6b6b6b")  # a node without a figure of its own (fused, not quantizable)

OP_TYPE, TIME, SENSITIVITY = "op", "time", "sensitivity"

DIFF_COLOURS = {  # status → (header fill, text colour)
    ADDED: ("#2e7d32", "#ffffff"),
    SHAPE: ("#ef6c00", "#ffffff"),
    PRECISION: ("#6a1b9a", "#ffffff"),
    UNCHANGED: ("#dcdcdc", "#4a4a4a"),
    REMOVED: ("#c62828", "#ffffff"),
}


@dataclass(frozen=True)
class NodeMeasures:
    """One version's per-node figures: time from `bench --layers`, sensitivity from quantize.auto."""

    version_id: int | None = None
    time_ms: dict[str, float] = field(default_factory=dict)
    time_share: dict[str, float] = field(default_factory=dict)
    sensitivity: dict[str, float] = field(default_factory=dict)

    @property
    def nodes(self) -> set[str]:
        return {*self.time_ms, *self.sensitivity}

    def values(self, kind: str) -> dict[str, float]:
        return {TIME: self.time_ms, SENSITIVITY: self.sensitivity}.get(kind, {})

    def missing(self, kind: str) -> str | None:
        """How to get the figures of ``kind`` when this version has none; None when it has them."""
        if self.values(kind) or kind == OP_TYPE:
            return None
        version = f"v{self.version_id}" if self.version_id is not None else "VERSION"
        if kind == TIME:
            return f"Measure with per-layer timing: studio bench {version} --layers"
        return (
            "Only versions made by quantize.auto have it: run “Accuracy-aware INT8 quantization” "
            "on the float model with a tolerance plain quantization misses"
        )


def node_measures(view: VersionView) -> NodeMeasures:
    times = view.times or {}
    timed = {name: row for name, row in times.items() if isinstance(row.get("ms"), (int, float))}
    return NodeMeasures(
        view.version.id,
        {name: float(row["ms"]) for name, row in timed.items()},
        {name: float(row.get("share") or 0.0) for name, row in timed.items()},
        dict(view.sensitivity or {}),
    )


def attachment(measures: NodeMeasures) -> dict:
    """The ``netron:attachment`` document whose metrics Netron's node sidebar lists."""
    metrics = []

    def add(node: str, name: str, value: str) -> None:
        metrics.append({"kind": "node", "target": node, "name": name, "value": value, "type": "attribute"})

    for node, ms in measures.time_ms.items():
        add(node, "time", f"{ms:.3f} ms")
        add(node, "share of time", f"{100 * measures.time_share.get(node, 0.0):.1f} %")
    for node, value in measures.sensitivity.items():
        add(node, "quantization sensitivity", f"{value:.4g}")
    return {"signature": "netron:attachment", "metrics": metrics}


def heat_colour(t: float) -> tuple[str, str]:
    """(fill, text colour) at ``t`` in [0, 1] along ``HEAT_STOPS``; white text on the dark half."""
    t = min(max(t, 0.0), 1.0)
    span = t * (len(HEAT_STOPS) - 1)
    i = min(int(span), len(HEAT_STOPS) - 2)
    f = span - i
    rgb = [round(a + (b - a) * f) for a, b in zip(HEAT_STOPS[i], HEAT_STOPS[i + 1], strict=True)]
    return "#{:02x}{:02x}{:02x}".format(*rgb), ("#ffffff" if t > 0.55 else "#1a1a1a")


def heat_fills(values: Mapping[str, float]) -> tuple[dict[str, tuple[str, str]], float, float]:
    """Each node's heat colour on a linear scale from the smallest value to the largest; and those two."""
    if not values:
        return {}, 0.0, 0.0
    lo, hi = min(values.values()), max(values.values())
    span = hi - lo
    return {name: heat_colour((v - lo) / span if span > 0 else 1.0) for name, v in values.items()}, lo, hi


def diff_fills(statuses: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Node name → its diff status's colours."""
    return {name: DIFF_COLOURS[status] for name, status in statuses.items() if status in DIFF_COLOURS}
