"""`studio report`: one self-contained HTML page about a project, and its measurements as CSV.

The page must open anywhere, offline, years later: no scripts, no fonts, no images fetched from
anywhere. Charts are inline SVG drawn here, so there is no plotting dependency. Every piece of
text that came from a user (project and version names, technique parameters, notes) is escaped.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio import __version__
from studio.api import StudioError
from studio.core.files import atomic_write_text
from studio.tables import (
    UNKNOWN,
    energy_cell,
    energy_text,
    human_bytes,
    human_count,
    millis,
    pareto_front,
    percent,
    speed_text,
)

if TYPE_CHECKING:
    from studio.project import Project

_BASE_COLUMNS = [
    "measurement_id",
    "version_id",
    "version",
    "parent_id",
    "technique",
    "format",
    "dataset",
    "device",
    "runtime",
    "provider",
    "batch",
    "threads",
    "runs",
    "samples",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p99_ms",
    "latency_mean_ms",
    "latency_std_ms",
    "throughput_per_s",
    "energy_per_inference_j",
    "peak_memory_bytes",
    "size_bytes",
    "params",
    "reference_version_id",
    "created_at",
]
_GROUPS = ("accuracy", "fidelity", "environment", "timing")  # flattened as they are stored
_CSV_GROUPS = (*_GROUPS, "execution")  # execution's columns are chosen (_execution_columns)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ReportResult:
    html: Path
    csv: Path | None
    versions: int
    measurements: int

    def to_dict(self) -> dict:
        return {
            "html": str(self.html),
            "csv": None if self.csv is None else str(self.csv),
            "versions": self.versions,
            "measurements": self.measurements,
        }


def write_report(project: Project, out: Path, *, csv_out: Path | None = None) -> ReportResult:
    for path in (out, csv_out):
        if path is not None and Path(path).is_dir():
            raise StudioError(f"{path} is a folder; give the file to write")
    data = report_data(project)
    atomic_write_text(Path(out), render_html(data))
    Path(out).chmod(0o644)
    if csv_out is not None:
        atomic_write_text(Path(csv_out), measurements_csv(data["measurements"]))
        Path(csv_out).chmod(0o644)
    return ReportResult(Path(out), csv_out, len(data["versions"]), len(data["measurements"]))


# -- the data --------------------------------------------------------------------------------------


def report_data(project: Project) -> dict[str, Any]:
    """Everything the page shows, as plain values: versions, flat measurement rows, environment."""
    from studio.core.hardware import environment

    store = project.store
    versions = [v.to_dict() for v in store.list_versions()]
    by_id = {v["id"]: v for v in versions}
    datasets = {d.id: d.name for d in store.list_datasets()}
    rows = [_row(m.to_dict(), by_id[m.version_id], datasets) for m in store.list_measurements()]
    return {
        "project": store.project().to_dict(),
        "machine": environment(),
        "studio": __version__,
        "versions": versions,
        "measurements": rows,
    }


def _row(m: dict, version: dict, datasets: dict[int, str]) -> dict[str, Any]:
    row = {
        "measurement_id": m["id"],
        "version_id": version["id"],
        "version": version["name"],
        "parent_id": version["parent_id"],
        "technique": version["technique"],
        "format": version["format"],
        "dataset": datasets.get(m["dataset_id"]),
        **{key: m[key] for key in _BASE_COLUMNS if key in m},
    }
    for group in _GROUPS:
        for key, value in sorted((m.get(group) or {}).items()):
            row[f"{group}_{key}"] = value
    timing = m.get("timing") or {}
    paired = timing.get("paired") or {}
    row["timing_noise"] = timing.get("noise")
    row["timing_p50_ci95"] = _interval(timing.get("p50_ci95"), ".3f")
    row["timing_speedup"] = paired.get("speedup")
    row["timing_speedup_ci95"] = _interval(paired.get("ci95"), ".3f")
    row["timing_verdict"] = paired.get("verdict")
    row["_paired"] = paired or None  # for the page; the CSV has the flat columns above
    row.update(_execution_columns(m.get("execution") or {}))
    return row


def _execution_columns(execution: dict) -> dict[str, Any]:
    """How the measurement ran, flat: the energy's source or why it is missing, the memory's,
    the nodes each ONNX Runtime provider ran and the CPU fallback sentence, torch's mode, the sweep."""
    energy, memory = execution.get("energy") or {}, execution.get("peak_memory") or {}
    placement = execution.get("placement") or {}
    return {
        "execution_energy_source": energy.get("source"),
        "execution_energy_missing": energy.get("missing"),
        "execution_peak_memory_source": memory.get("source"),
        "execution_peak_memory_missing": memory.get("missing"),
        "execution_provider_requested": placement.get("requested"),
        "execution_nodes": placement.get("nodes"),
        "execution_cpu_fallback": placement.get("fallback"),
        "execution_mode": execution.get("mode"),
        "execution_sweep": execution.get("sweep"),
    }


def _interval(pair: list | None, spec: str) -> str | None:
    return None if not pair else f"{format(pair[0], spec)}–{format(pair[1], spec)}"


def csv_columns(rows: list[dict]) -> list[str]:
    extra = sorted({key for row in rows for key in row} - set(_BASE_COLUMNS))
    return _BASE_COLUMNS + [k for g in _CSV_GROUPS for k in extra if k.startswith(f"{g}_")]


def measurements_csv(rows: list[dict]) -> str:
    """One row per measurement, flat columns; text that a spreadsheet would run as a formula is
    prefixed with a quote (version names are user input)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=csv_columns(rows), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _csv_cell(value) for key, value in row.items()})
    return buffer.getvalue()


def _csv_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return value


def latest_by_version(rows: list[dict]) -> dict[int, dict]:
    latest: dict[int, dict] = {}
    for row in rows:
        latest[row["version_id"]] = row
    return latest


# -- the page --------------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:70rem;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f4f4f4}
.muted{color:#777}.charts{display:flex;flex-wrap:wrap;gap:1.5rem}
figure{margin:0}figcaption{font-size:.85rem;color:#555}
svg text{font-size:11px;fill:#333}
"""


def render_html(data: dict[str, Any]) -> str:
    project = data["project"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(project['name'])}: model versions</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{_e(project['name'])}</h1>",
        f"<p class=muted>Created {_e(_when(project['created_at']))} · report by Model Optimization Studio "
        f"{_e(data['studio'])}</p>",
        "<h2>Charts</h2>",
        _charts(data),
        "<h2>Versions</h2>",
        _versions_table(data["versions"]),
        "<h2>Measurements</h2>",
        _measurements_table(data["measurements"]),
        "<h2>Environment</h2>",
        _environment(data),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _e(value: Any) -> str:
    return escape("-" if value is None else str(value), quote=True)


def _table(headers: list[str], rows: list[list[tuple[Any, bool]]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td{' class=n' if num else ''}>{_e(v)}</td>" for v, num in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def lineage(version: dict, by_id: dict[int, dict]) -> str:
    chain, seen, current = [], set(), version
    while current is not None and current["id"] not in seen:
        seen.add(current["id"])
        chain.append(f"v{current['id']}")
        current = by_id.get(current["parent_id"])
    return " → ".join(reversed(chain))


def _versions_table(versions: list[dict]) -> str:
    if not versions:
        return "<p class=muted>No model versions yet.</p>"
    by_id = {v["id"]: v for v in versions}
    rows = [
        [
            (f"v{v['id']}", False),
            (v["name"], False),
            (lineage(v, by_id), False),
            (v["technique"], False),
            (json.dumps(v["technique_params"], sort_keys=True) if v["technique_params"] else "", False),
            (v["format"], False),
            (human_bytes(v["size_bytes"]), True),
            (human_count(v["params"]), True),
            (human_count(v["macs"], missing=UNKNOWN), True),
            (_when(v["created_at"]), False),
        ]
        for v in versions
    ]
    headers = [
        "id",
        "name",
        "lineage",
        "technique",
        "parameters",
        "format",
        "size",
        "params",
        "MACs",
        "created",
    ]
    return _table(headers, rows)


def _measurements_table(rows: list[dict]) -> str:
    if not rows:
        return "<p class=muted>No measurements yet.</p>"
    cells = [
        [
            (r["measurement_id"], True),
            (f"v{r['version_id']} {r['version']}", False),
            (r["dataset"], False),
            (f"{r['device']} / {r['runtime']}", False),
            (r["batch"], True),
            (r["threads"], True),
            (percent(r.get("accuracy_top1")), True),
            (percent(r.get("accuracy_top5")), True),
            (_num(r.get("fidelity_cosine_min"), ".5f"), True),
            (("~" if r.get("timing_noise") else "") + _num(r["latency_p50_ms"], ".3f"), True),
            (_speed(r), True),
            (_num(r["latency_p90_ms"], ".3f"), True),
            (_num(r["latency_p99_ms"], ".3f"), True),
            (_num(r["throughput_per_s"], ".1f"), True),
            (energy_cell(r.get("energy_per_inference_j"), r.get("execution_energy_missing")), True),
            (human_bytes(r.get("peak_memory_bytes")), True),
            (human_bytes(r["size_bytes"]), True),
            (_when(r["created_at"]), False),
        ]
        for r in rows
    ]
    headers = ["#", "version", "dataset", "device / runtime", "batch", "threads", "top-1", "top-5",
               "cos min", "p50 ms", "vs reference", "p90 ms", "p99 ms", "per s", "J/inference",
               "GPU memory", "size", "taken"]  # fmt: skip
    noisy = [r for r in rows if r.get("timing_noise")]
    note = "".join(
        f"<p class=muted>~ measurement {_e(str(r['measurement_id']))}: {_e(r['timing_noise'])}; "
        "measure it again on a quieter machine before trusting its timings.</p>"
        for r in noisy
    )
    note += "".join(
        f"<p><b>measurement {_e(str(r['measurement_id']))}: {_e(r['execution_cpu_fallback'])}</b> "
        f"(asked for {_e(r['execution_provider_requested'])}).</p>"
        for r in rows
        if r.get("execution_cpu_fallback")
    )
    reasons = sorted({r["execution_energy_missing"] for r in rows if r.get("execution_energy_missing")})
    note += "".join(f"<p class=muted>n/a: energy {_e(energy_text(None, reason))}.</p>" for reason in reasons)
    return _table(headers, cells) + note


def _speed(row: dict) -> str:
    """The paired speed-up over the measurement's reference, as the command line words it."""
    return speed_text(row.get("_paired"))


def _environment(data: dict) -> str:
    seen: dict[str, list[int]] = {}
    for row in data["measurements"]:
        env = {k[len("environment_") :]: v for k, v in row.items() if k.startswith("environment_")}
        seen.setdefault(json.dumps(env, sort_keys=True), []).append(row["measurement_id"])
    parts = ["<h3>This report was made on</h3>", _kv_table(data["machine"])]
    for env_json, ids in seen.items():
        parts.append(f"<h3>Measurements {_e(', '.join(str(i) for i in ids))} were taken with</h3>")
        parts.append(_kv_table(json.loads(env_json)))
    return "\n".join(parts)


def _kv_table(values: dict) -> str:
    return _table(["", ""], [[(k, False), (v, False)] for k, v in sorted(values.items())])


def _when(iso: str | None) -> str:
    """'2026-11-21T20:44:03.5+00:00' → '2026-11-21 20:44 UTC' (times are stored in UTC)."""
    return "-" if not iso else f"{iso[:10]} {iso[11:16]} UTC"


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


# -- charts ----------------------------------------------------------------------------------------


def _charts(data: dict) -> str:
    latest = latest_by_version(data["measurements"])
    versions = data["versions"]
    figures = [
        _figure(
            accuracy_latency_svg(versions, latest),
            "Top-1 accuracy against p50 latency (latest measurement of each "
            "version). The line joins the Pareto front; the baseline is drawn as a ring.",
        ),  # fmt: skip
        _figure(bars_svg([(v, v["size_bytes"]) for v in versions], human_bytes), "Size of each version"),
        _figure(
            bars_svg(
                [(v, latest[v["id"]]["latency_p50_ms"]) for v in versions if v["id"] in latest],
                millis,
            ),
            "p50 latency of each version (latest measurement)",
        ),
    ]
    return '<div class="charts">' + "".join(figures) + "</div>"


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{_e(caption)}</figcaption></figure>"


_W, _H, _LEFT, _RIGHT, _TOP, _BOTTOM = 520, 320, 56, 16, 16, 44


def accuracy_latency_svg(versions: list[dict], latest: dict[int, dict]) -> str:
    measured = [
        (v, latest[v["id"]])
        for v in versions
        if v["id"] in latest
        and latest[v["id"]].get("accuracy_top1") is not None
        and latest[v["id"]]["latency_p50_ms"] is not None
    ]
    if not measured:
        return _empty_svg("No version has an accuracy measurement yet.")
    points = [(row["latency_p50_ms"], 100 * row["accuracy_top1"]) for _, row in measured]
    x = _Axis([p[0] for p in points], _LEFT, _W - _RIGHT, floor_zero=True)
    y = _Axis([p[1] for p in points], _H - _BOTTOM, _TOP, ceiling=100.0)
    parts = [_svg_open(), x.draw_x("p50 latency (ms)"), y.draw_y("top-1 accuracy (%)")]
    front = pareto_front(points)
    line = " ".join(f"{x(points[i][0]):.1f},{y(points[i][1]):.1f}" for i in front)
    parts.append(f'<polyline points="{line}" fill="none" stroke="#d95f02" stroke-width="1.5"/>')
    for (version, _), (lat, acc) in zip(measured, points, strict=True):
        cx, cy = x(lat), y(acc)
        label = f"v{version['id']} {version['name']}"
        tip = f"<title>{_e(label)}: {acc:.2f}% at {lat:.3f} ms</title>"
        if version["parent_id"] is None:
            parts.append(
                f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="7" fill="none" stroke="#1b9e77" stroke-width="2">{tip}</circle>'
            )
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="#7570b3">{tip}</circle>')
        parts.append(_point_label(cx, cy, _short(label)))
    parts.append(_legend())
    return "".join(parts) + "</svg>"


def _point_label(cx: float, cy: float, text: str) -> str:
    """Right of the point, or left of it where the text would run off the chart."""
    if cx + 9 + 6.5 * len(text) > _W - _RIGHT:
        return f'<text x="{cx - 9:.1f}" y="{cy + 4:.1f}" text-anchor="end">{_e(text)}</text>'
    return f'<text x="{cx + 9:.1f}" y="{cy + 4:.1f}">{_e(text)}</text>'


def _legend() -> str:
    y = _TOP + 6
    return (
        f'<circle cx="{_W - 150}" cy="{y}" r="6" fill="none" stroke="#1b9e77" stroke-width="2"/>'
        f'<text x="{_W - 140}" y="{y + 4}">baseline</text>'
        f'<line x1="{_W - 90}" y1="{y}" x2="{_W - 74}" y2="{y}" stroke="#d95f02" stroke-width="1.5"/>'
        f'<text x="{_W - 70}" y="{y + 4}">Pareto front</text>'
    )


def bars_svg(items: list[tuple[dict, float | None]], fmt) -> str:
    items = [(v, value) for v, value in items if value is not None]
    if not items:
        return _empty_svg("Nothing measured yet.")
    row, label_w = 22, 170
    height = _TOP + row * len(items) + 8
    top = max(value for _, value in items) or 1
    parts = [_svg_open(height)]
    for i, (version, value) in enumerate(items):
        y = _TOP + i * row
        width = (_W - label_w - 90) * value / top
        label = f"v{version['id']} {version['name']}"
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{_e(_short(label))}</text>')
        parts.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{width:.1f}" height="{row - 6}" fill="#7570b3">'
            f"<title>{_e(label)}: {_e(fmt(value))}</title></rect>"
        )
        parts.append(f'<text x="{label_w + width + 6:.1f}" y="{y + 14}">{_e(fmt(value))}</text>')
    return "".join(parts) + "</svg>"


def _svg_open(height: int = _H) -> str:
    return f'<svg width="{_W}" height="{height}" viewBox="0 0 {_W} {height}" role="img">'


def _empty_svg(message: str) -> str:
    return f'{_svg_open(60)}<text x="10" y="34">{_e(message)}</text></svg>'


def _short(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Axis:
    """A linear scale from data values to pixels, with a few round tick values."""

    def __init__(
        self,
        values: list[float],
        start: float,
        end: float,
        *,
        floor_zero: bool = False,
        ceiling: float | None = None,
    ) -> None:
        lo, hi = min(values), max(values)
        if floor_zero:
            lo = 0.0
        if hi - lo < 1e-9:
            lo, hi = lo - 1, hi + 1
        pad = (hi - lo) * 0.08
        self.lo, self.hi = (lo if floor_zero else lo - pad), hi + pad
        if ceiling is not None and max(values) <= ceiling:
            self.hi = min(self.hi, ceiling)  # no room above 100 % on an accuracy axis
        self.start, self.end = start, end

    def __call__(self, value: float) -> float:
        return self.start + (value - self.lo) / (self.hi - self.lo) * (self.end - self.start)

    def ticks(self, count: int = 5) -> list[float]:
        raw = (self.hi - self.lo) / count
        magnitude = 10 ** _floor_log10(raw)
        step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
        first = -(-self.lo // step) * step
        values, v = [], first
        while v <= self.hi + 1e-12:
            values.append(round(v, 10))
            v += step
        return values

    def draw_x(self, title: str) -> str:
        base = _H - _BOTTOM
        parts = [f'<line x1="{_LEFT}" y1="{base}" x2="{_W - _RIGHT}" y2="{base}" stroke="#999"/>']
        for t in self.ticks():
            px = self(t)
            parts.append(f'<line x1="{px:.1f}" y1="{base}" x2="{px:.1f}" y2="{base + 4}" stroke="#999"/>')
            parts.append(f'<text x="{px:.1f}" y="{base + 16}" text-anchor="middle">{t:g}</text>')
        parts.append(
            f'<text x="{(_LEFT + _W - _RIGHT) / 2}" y="{_H - 8}" text-anchor="middle">{_e(title)}</text>'
        )
        return "".join(parts)

    def draw_y(self, title: str) -> str:
        parts = [f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_H - _BOTTOM}" stroke="#999"/>']
        for t in self.ticks():
            py = self(t)
            parts.append(
                f'<line x1="{_LEFT - 4}" y1="{py:.1f}" x2="{_W - _RIGHT}" y2="{py:.1f}" stroke="#eee"/>'
            )
            parts.append(f'<text x="{_LEFT - 6}" y="{py + 4:.1f}" text-anchor="end">{t:g}</text>')
        mid = (_TOP + _H - _BOTTOM) / 2
        parts.append(
            f'<text x="14" y="{mid}" text-anchor="middle" transform="rotate(-90 14 {mid})">{_e(title)}</text>'
        )
        return "".join(parts)


def _floor_log10(value: float) -> int:
    import math

    return math.floor(math.log10(value)) if value > 0 else 0
