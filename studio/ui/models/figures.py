"""The figures the window shows about each version, as plain data (no Qt).

Every view (lineage tree, charts, compare table) reads the same ``VersionFigures`` list, built in
one pass over the project's versions and measurements, so a refresh costs two queries whatever
the number of views, and the views can never disagree about a number.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from studio import tables
from studio.tables import pareto_front as pareto_front  # owned by studio.tables, named here too

if TYPE_CHECKING:
    from studio.store import Measurement, ModelVersion

# The window writes figures in the studio's one set of formats (studio.tables), with an en dash
# for a figure not measured yet and a space before the percent sign.
_MISSING = "–"


@dataclass(frozen=True)
class VersionFigures:
    """One version and its latest measurement, flattened for display."""

    id: int
    name: str
    parent_id: int | None
    technique: str | None
    format: str
    size_bytes: int
    params: int | None
    macs: int | None
    latency_ms: float | None = None  # p50 of the latest measurement
    latency_p99_ms: float | None = None
    throughput_per_s: float | None = None
    accuracy: float | None = None  # top-1, 0..1
    cosine_min: float | None = None
    measured_on: str | None = None  # "cpu, batch 1, 1 thread"
    measurements: int = 0
    notes: str = ""
    details: dict[str, Any] = field(default_factory=dict, compare=False)
    speed: dict[str, Any] | None = field(default=None, compare=False)  # paired, against the parent
    noise: str | None = None  # "noisy: …" when the latest timing is not to be trusted as it stands
    latency_ci95: tuple[float, float] | None = None  # where the latest p50 lies, 95 % of the time
    energy_j: float | None = None  # joules per inference of the latest measurement; never 0 for none
    energy_missing: str | None = None  # why it has none (studio.measurements.energy_missing)
    peak_memory_bytes: int | None = None  # peak GPU memory of the latest measurement
    cpu_fallback: str | None = None  # "12 of 140 nodes ran on the CPU" where a GPU provider was asked for
    sweep: tuple[SweepPoint, ...] = field(default=(), compare=False)  # the latest batch sweep

    @property
    def not_faster(self) -> bool:
        """Timed against its parent in one job, it is not measurably faster (studio.core.timing)."""
        return (self.speed or {}).get("verdict") in ("no measurable difference", "slower")

    @property
    def label(self) -> str:
        return f"{'⚠ ' if self.collapsed else ''}v{self.id} {self.name}"

    @property
    def collapsed(self) -> bool:
        """The step's result follows its parent poorly on held-out samples (studio.core.gate)."""
        return bool((self.details.get("gate") or {}).get("collapsed"))

    @property
    def gate_text(self) -> str | None:
        """The gate's verdict and figure as a user reads it, or None for an import (no parent)."""
        figure = self.gate_figure
        if figure is None:
            return None
        verdict = "follows its parent poorly" if self.collapsed else "follows its parent"
        return f"{verdict}: {figure}"

    @property
    def gate_figure(self) -> str | None:
        """``top-1 agreement 42.0 % on 72 held-out samples (…)``: the gate's figure alone."""
        gate = self.details.get("gate")
        if not gate:
            return None
        figure = (
            f"{100 * gate['figure']:.1f} %" if gate["rule"] == "top-1 agreement" else f"{gate['figure']:.4f}"
        )
        return f"{gate['rule']} {figure} on {gate['samples']} held-out samples ({gate['source']})"

    @property
    def is_root(self) -> bool:
        return self.parent_id is None


@dataclass(frozen=True)
class SweepPoint:
    """One batch of a sweep (`studio bench --sweep`)."""

    batch: int
    throughput_per_s: float | None
    latency_ms: float | None
    peak_memory_bytes: int | None
    energy_j: float | None


def version_figures(
    versions: Iterable[ModelVersion], measurements: Iterable[Measurement]
) -> list[VersionFigures]:
    """Each version with the figures of its latest measurement (measurements come oldest first)."""
    from studio.measurements import speeds_against_parents, sweeps_by_version

    versions, measurements = list(versions), list(measurements)
    speeds = speeds_against_parents(versions, measurements)
    sweeps = sweeps_by_version(measurements)
    latest: dict[int, Measurement] = {}
    counts: dict[int, int] = {}
    parents = {v.id: v.parent_id for v in versions}
    to_parent: dict[int, float] = {}  # the latest minimum cosine measured against the version's parent
    for m in measurements:
        latest[m.version_id] = m
        counts[m.version_id] = counts.get(m.version_id, 0) + 1
        cosine = (m.fidelity or {}).get("cosine_min")
        if cosine is not None and m.reference_version_id == parents.get(m.version_id):
            to_parent[m.version_id] = cosine
    return [
        _figures(
            v,
            latest.get(v.id),
            counts.get(v.id, 0),
            speeds.get(v.id),
            sweeps.get(v.id, ()),
            to_parent.get(v.id),
        )
        for v in versions
    ]


def _figures(
    v: ModelVersion,
    m: Measurement | None,
    count: int,
    speed: dict | None,
    sweep: Sequence[Measurement] = (),
    cosine_to_parent: float | None = None,
) -> VersionFigures:
    """``cosine_to_parent``: from the latest measurement against the parent; without one, the
    result gate's figure on held-out samples (a later measurement of the version alone has none)."""
    from studio.measurements import energy_missing

    base = dict(
        id=v.id,
        name=v.name,
        parent_id=v.parent_id,
        technique=v.technique,
        format=v.format,
        size_bytes=v.size_bytes,
        params=v.params,
        macs=v.macs,
        measurements=count,
        notes=v.notes,
        details=dict(v.details or {}),
        speed=speed,
        cosine_min=cosine_to_parent
        if cosine_to_parent is not None
        else ((v.details or {}).get("gate") or {}).get("cosine_min"),
        sweep=tuple(
            SweepPoint(
                s.batch, s.throughput_per_s, s.latency_p50_ms, s.peak_memory_bytes, s.energy_per_inference_j
            )
            for s in sweep
        ),
    )
    if m is None:
        return VersionFigures(**base)
    return VersionFigures(
        **base,
        latency_ms=m.latency_p50_ms,
        latency_p99_ms=m.latency_p99_ms,
        throughput_per_s=m.throughput_per_s,
        accuracy=(m.accuracy or {}).get("top1"),
        measured_on=_settings_text(m),
        noise=(m.timing or {}).get("noise"),
        latency_ci95=_interval((m.timing or {}).get("p50_ci95")),
        energy_j=m.energy_per_inference_j,
        energy_missing=energy_missing(m),
        peak_memory_bytes=m.peak_memory_bytes,
        cpu_fallback=((m.execution or {}).get("placement") or {}).get("fallback"),
    )


def _interval(pair: Sequence[float] | None) -> tuple[float, float] | None:
    return None if not pair else (float(pair[0]), float(pair[1]))


def _settings_text(m: Measurement) -> str:
    threads = "" if m.threads is None else f", {m.threads} thread{'s' if m.threads != 1 else ''}"
    return f"{m.device}, batch {m.batch}{threads}"


def baseline_of(figures: Sequence[VersionFigures], version_id: int) -> VersionFigures | None:
    """The root of ``version_id``'s lineage: what its deltas are measured against."""
    by_id = {f.id: f for f in figures}
    current = by_id.get(version_id)
    seen: set[int] = set()
    while current is not None and current.parent_id in by_id and current.id not in seen:
        seen.add(current.id)
        current = by_id[current.parent_id]
    return current


def children_of(figures: Sequence[VersionFigures]) -> dict[int | None, list[VersionFigures]]:
    """Versions grouped under their parent (None for imported roots), each list oldest first."""
    known = {f.id for f in figures}
    tree: dict[int | None, list[VersionFigures]] = {}
    for f in figures:
        parent = f.parent_id if f.parent_id in known else None
        tree.setdefault(parent, []).append(f)
    return tree


@dataclass(frozen=True)
class Metric:
    """One row of the compare table: how to read it, show it, and which way is better."""

    title: str
    attr: str
    lower_is_better: bool
    kind: str  # "bytes", "count", "ms", "rate", "fraction", "joules"

    def value(self, f: VersionFigures) -> float | None:
        return getattr(f, self.attr)

    def shown(self, f: VersionFigures) -> str:
        """The cell's text: energy the hardware could not give reads "not available on this machine"."""
        value = self.value(f)
        if value is None and self.kind == "joules" and f.energy_missing not in (None, tables.NOT_MEASURED):
            return tables.NOT_AVAILABLE
        return self.text(value)

    def text(self, value: float | None) -> str:
        if value is None:
            return _MISSING
        return {
            "bytes": human_bytes,
            "count": human_count,
            "ms": millis,
            "rate": lambda v: f"{v:.1f} /s",
            "fraction": percent,
            "joules": joules,
        }[self.kind](value)

    def change(self, reference: VersionFigures, other: VersionFigures) -> tuple[str, int]:
        """:meth:`delta` between two versions; two p50 latencies whose intervals overlap are no
        measurable difference, whatever their ratio (they were timed apart, each with its noise).
        A child against its own parent shows the speed-up both were timed for in one paired job."""
        if self.attr == "latency_ms" and other.speed and other.parent_id == reference.id:
            verdict = other.speed.get("verdict")
            sign = {"faster": 1, "slower": -1}.get(verdict, 0)
            return (tables.speed_cell(other.speed).replace("no gain", "no measurable difference"), sign)
        if self.attr == "latency_ms" and reference.latency_ci95 and other.latency_ci95:
            (low_a, high_a), (low_b, high_b) = reference.latency_ci95, other.latency_ci95
            if low_a <= high_b and low_b <= high_a:
                return ("no measurable difference", 0)
        return self.delta(self.value(reference), self.value(other))

    def delta(self, base: float | None, value: float | None) -> tuple[str, int]:
        """The change from ``base`` as text, and its sign for colouring: +1 better, -1 worse, 0 same."""
        if base is None or value is None or base == value:
            return ("", 0)
        if self.kind == "fraction":
            better = (value < base) == self.lower_is_better
            return (f"{100 * (value - base):+.2f} pts", 1 if better else -1)
        if not base or not value:
            return ("", 0)
        ratio = base / value if self.lower_is_better else value / base
        if ratio >= 1:
            return (f"{ratio:.2f}× {_BETTER_WORDS[self.kind]}", 1)
        return (f"{1 / ratio:.2f}× {_WORSE_WORDS[self.kind]}", -1)


_BETTER_WORDS = {
    "bytes": "smaller",
    "count": "fewer",
    "ms": "faster",
    "rate": "faster",
    "joules": "less energy",
}
_WORSE_WORDS = {"bytes": "larger", "count": "more", "ms": "slower", "rate": "slower", "joules": "more energy"}

METRICS: tuple[Metric, ...] = (
    Metric("Size", "size_bytes", True, "bytes"),
    Metric("Parameters", "params", True, "count"),
    Metric("MACs", "macs", True, "count"),
    Metric("Latency p50", "latency_ms", True, "ms"),
    Metric("Latency p99", "latency_p99_ms", True, "ms"),
    Metric("Throughput", "throughput_per_s", False, "rate"),
    Metric("Top-1 accuracy", "accuracy", False, "fraction"),
    Metric("Min. cosine to parent", "cosine_min", False, "fraction"),
    Metric("Energy per inference", "energy_j", True, "joules"),
    Metric("Peak GPU memory", "peak_memory_bytes", True, "bytes"),
)


def human_bytes(n: float | None) -> str:
    return tables.human_bytes(n, missing=_MISSING)


def human_count(n: float | None) -> str:
    return tables.human_count(n, missing=_MISSING)


def percent(x: float | None) -> str:
    return tables.percent(x, missing=_MISSING, unit=" %")


def millis(x: float | None) -> str:
    return tables.millis(x, missing=_MISSING)


def joules(x: float | None) -> str:
    return tables.joules(x, missing=_MISSING)
