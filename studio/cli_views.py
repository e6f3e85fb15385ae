"""What the command line prints without `--json`: the same payloads, as tables a person reads."""

from __future__ import annotations

import json
import shutil
import textwrap

import yaml
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from studio.core.input_roles import describe_role
from studio.core.timing import SAME, SLOWER
from studio.tables import (
    UNKNOWN,
    energy_cell,
    energy_text,
    human_bytes,
    human_count,
    percent,
    speed_cell,
    speed_text,
    table,
)


def _shape(shape: list) -> str:
    return "×".join("?" if d is None else str(d) for d in shape) or "scalar"


def _tensors(title: str, specs: list[dict]) -> str:
    """Inputs also say what they are fed when one is not a batch of samples (a state, a value)."""
    if not any("role" in s for s in specs):
        rows = [(s["name"], _shape(s["shape"]), s["dtype"]) for s in specs]
        return f"{title}:\n" + table(["name", "shape", "dtype"], rows, align="lll")
    rows = [(s["name"], _shape(s["shape"]), s["dtype"], describe_role(s.get("role", "batch"))) for s in specs]
    return f"{title}:\n" + table(["name", "shape", "dtype", "fed"], rows, align="llll")


def version_text(v: dict) -> str:
    parent = f" (from v{v['parent_id']})" if v.get("parent_id") else ""
    lines = [
        f"v{v['id']}  {v['name']}{parent}",
        f"  format     {v['format']}",
        f"  size       {human_bytes(v['size_bytes'])}",
        f"  params     {human_count(v['params'])}",
        f"  MACs       {human_count(v['macs'], missing=UNKNOWN)}",
        f"  artifact   {v['artifact'][:16]}…",
    ]
    if v.get("technique") and v["technique"] != "import":
        lines.append(f"  technique  {v['technique']} {v.get('technique_params') or ''}")
    return "\n".join(lines)


def info_text(info: dict, *, limit: int | None = None) -> str:
    """The summary and the layer table; a MAC count that cannot be known reads "unknown"."""
    total = info["macs"]
    layers = info["layers"]
    times = (info.get("layer_times") or {}).get("nodes") or {}
    if limit is not None:  # the slowest when they were timed (`bench --layers`), else the heaviest
        key = (lambda layer: times.get(layer["name"], {}).get("ms", -1.0)) if times else _macs_key_of
        layers = sorted(layers, key=key, reverse=True)[:limit]
    rows = [
        (
            layer["name"],
            layer["op"],
            _shape(layer["output_shape"]) if layer["output_shape"] is not None else "?",
            layer["params"],
            UNKNOWN if layer["macs"] is None else layer["macs"],
            f"{100 * layer['macs'] / total:.1f}%" if total and layer["macs"] is not None else "-",
            *(_time_cells(times.get(layer["name"])) if times else ()),
        )
        for layer in layers
    ]
    headers = ["name", "op", "output", "params", "MACs", "share"] + (["time ms", "of time"] if times else [])
    ops = ", ".join(f"{op} {n}" for op, n in sorted(info["op_histogram"].items(), key=lambda kv: -kv[1]))
    head = [
        f"format: {info['format']}   size: {human_bytes(info['size_bytes'])}   "
        f"params: {human_count(info['params'], missing=UNKNOWN)}   "
        f"MACs: {human_count(info['macs'], missing=UNKNOWN)}{_counted_at(info)}"
        + (f"   opset: {info['opset']}" if info.get("opset") else ""),
        _tensors("inputs", info["inputs"]),
        _tensors("outputs", info["outputs"]),
        f"operators: {ops}",
        "layers:"
        + (
            f" (times from measurement {info['layer_times']['measurement']}, ONNX Runtime's profiler)"
            if times
            else ""
        ),
        table(headers, rows, align="lllrrr" + ("rr" if times else "")),
    ]
    return "\n".join(head)


def _macs_key_of(layer: dict) -> int:
    return -1 if layer["macs"] is None else layer["macs"]


def _time_cells(row: dict | None) -> tuple[str, str]:
    """A node's time and share of the run; fused into another node's kernel when not timed itself."""
    return ("fused", "-") if row is None else (f"{row['ms']:.3f}", f"{100 * row['share']:.1f}%")


def _counted_at(info: dict) -> str:
    """The input size MACs are for, shown where the model leaves sizes besides the batch open."""
    at = info.get("counted_inputs")
    open_sizes = any(not isinstance(d, int) for spec in info["inputs"] for d in spec["shape"][1:])
    if info["macs"] is None or not at or not open_sizes:
        return ""
    return " at input " + ", ".join(_shape(shape) for shape in at.values())


def _accuracy_cell(m: dict | None) -> str:
    if not m or not m.get("accuracy"):
        return "-"
    return percent(m["accuracy"].get("top1"))


def measurement_text(m: dict) -> str:
    lat, timing = m["latency_ms"], m.get("timing") or {}
    interval = timing.get("p50_ci95")
    within = f" (95 % CI {interval[0]:.3f}–{interval[1]:.3f})" if interval else ""
    execution = m.get("execution") or {}
    how = execution.get("mode") or m.get("provider") or "-"
    lines = [
        f"measurement {m['id']} of v{m['version']['id']} ({m['version']['name']})"
        f" on {m['device']} / {m['runtime']} ({how}), batch {m['batch']}, "
        f"{m['threads']} thread(s), {m['runs']} runs",
        f"  latency ms   p50 {lat['p50']:.3f}{within}   p90 {lat['p90']:.3f}   p99 {lat['p99']:.3f}"
        f"   mean {lat['mean']:.3f} ± {lat['std']:.3f}",
        f"  throughput   {m['throughput_per_s']:.1f} samples/s",
        f"  size         {human_bytes(m['size_bytes'])}   params {human_count(m['params'])}",
        *_execution_lines(m, execution),
    ]
    if m.get("accuracy"):
        acc = "   ".join(f"{k} {percent(v)}" for k, v in m["accuracy"].items())
        lines.append(
            f"  accuracy     {acc}  on {m['samples']} samples of '{m['dataset']}' (validation split)"
        )
    if m.get("fidelity"):
        f = m["fidelity"]
        lines.append(
            f"  fidelity     cosine mean {f['cosine_mean']:.5f} min {f['cosine_min']:.5f}   "
            f"argmax agreement {percent(f['argmax_agreement'])}   max abs error {f['max_abs_error']:.3g}"
            f"  (vs v{m['reference_version_id']})"
        )
    if timing.get("paired"):
        paired = timing["paired"]
        lines.append(
            f"  speed        {speed_text(paired)} against v{m['reference_version_id']}, "
            f"timed in {paired['rounds']} alternating rounds"
        )
    if timing.get("noise"):
        lines.append(f"  {timing['noise']}: measure again on a quieter machine before trusting these timings")
    return "\n".join(lines)


def _execution_lines(m: dict, execution: dict) -> list[str]:
    """Energy per inference (or why there is none), peak GPU memory on a GPU, and where ONNX
    Runtime ran the nodes when a GPU provider was asked for: a CPU fallback is never left out."""
    energy = execution.get("energy") or {}
    value = m.get("energy_per_inference_j")
    text = energy_text(value, energy.get("missing"))
    if value is not None:
        text += f" per inference ({energy.get('source')}, over {energy.get('window')})"
    lines = [f"  energy       {text}"]
    memory = execution.get("peak_memory") or {}
    if m.get("peak_memory_bytes") is not None:
        lines.append(f"  GPU memory   {human_bytes(m['peak_memory_bytes'])} peak ({memory.get('source')})")
    elif str(m.get("device", "")).startswith("cuda") and memory.get("missing"):
        lines.append(f"  GPU memory   not available: {memory['missing']}")
    placement = execution.get("placement") or {}
    if placement.get("requested") not in (None, "CPUExecutionProvider"):
        nodes = ", ".join(f"{provider} {n}" for provider, n in (placement.get("nodes") or {}).items())
        lines.append(f"  nodes        {nodes or '-'} (asked for {placement['requested']})")
    if placement.get("fallback"):
        lines.append(f"  on the CPU:  {placement['fallback']}")
    return lines


def sweep_text(result: dict) -> str:
    """`bench --sweep`: one row per batch, then why the sweep stopped where it did."""
    steps = result["measurements"]
    rows = [
        (
            m["batch"],
            _noisy_mark(m) + f"{m['latency_ms']['p50']:.3f}",
            f"{m['throughput_per_s']:.1f}",
            human_bytes(m.get("peak_memory_bytes")),
            _energy_of(m),
            m["id"],
        )
        for m in steps
    ]
    version = result["version"]
    headers = ["batch", "p50 ms", "per s", "peak GPU memory", "energy/inference", "measurement"]
    lines = [
        f"batch sweep of v{version['id']} ({version['name']})",
        table(headers, rows, align="rrrrrr"),
        f"stopped: {result['stopped']}",
    ]
    reasons = sorted({_energy_reason(m) for m in steps if _energy_of(m) == "n/a"})
    lines += [f"n/a: energy {energy_text(None, reason)}" for reason in reasons]
    fallbacks = {
        ((m.get("execution") or {}).get("placement") or {}).get("fallback") for m in result["measurements"]
    }
    lines += [f"on the CPU: {sentence}" for sentence in sorted(f for f in fallbacks if f)]
    return "\n".join(lines)


def _collapsed_mark(version: dict) -> str:
    """ "⚠ " before a version whose result follows its parent poorly (studio.core.gate), as the window marks it."""
    gate = (version.get("details") or {}).get("gate") or {}
    return "⚠ " if gate.get("collapsed") else ""


def _noisy_mark(m: dict) -> str:
    """ "~" before a latency taken on a machine too busy, or with runs too spread, to trust as is."""
    return "~" if (m.get("timing") or {}).get("noise") else ""


def versions_table(versions: list[dict]) -> str:
    children: dict[int | None, list[dict]] = {}
    for v in versions:
        children.setdefault(v["parent_id"], []).append(v)
    rows: list[tuple] = []
    latest = [v["latest_measurement"] for v in versions if v.get("latest_measurement")]

    def walk(parent: int | None, depth: int) -> None:
        for v in children.get(parent, []):
            m = v.get("latest_measurement")
            rows.append(
                (
                    f"v{v['id']}",
                    "  " * depth + ("└ " if depth else "") + _collapsed_mark(v) + v["name"],
                    v["technique"] or "-",
                    v["format"],
                    human_count(v["params"]),
                    human_bytes(v["size_bytes"]),
                    _accuracy_cell(m),
                    speed_cell(v.get("speed_vs_parent")),
                    "-" if not m else _noisy_mark(m) + f"{m['latency_ms']['p50']:.3f}",
                    "-" if not m else f"{m['latency_ms']['p99']:.3f}",
                    "-" if not m else f"{m['throughput_per_s']:.1f}",
                    _energy_of(m),
                )
            )
            walk(v["id"], depth + 1)

    walk(None, 0)
    headers = [
        "version",
        "name",
        "technique",
        "format",
        "params",
        "size",
        "top-1",
        "vs parent",
        "p50 ms",
        "p99 ms",
        "per s",
        "energy/inf",
    ]
    table_text = table(headers, rows, align="llllrrrrrrrr")
    if any(_noisy_mark(v["latest_measurement"]) for v in versions if v.get("latest_measurement")):
        table_text += (
            "\n~ measured on a busy machine or with widely spread runs: measure again before trusting it"
        )
    reasons = sorted({_energy_reason(m) for m in latest if _energy_of(m) == "n/a"})
    table_text += "".join(f"\nn/a: energy {energy_text(None, reason)}" for reason in reasons)
    return table_text


def _energy_reason(m: dict) -> str | None:
    return ((m.get("execution") or {}).get("energy") or {}).get("missing")


def _energy_of(m: dict | None) -> str:
    """The energy per inference cell: the figure, ``n/a`` where the hardware has none, ``-`` where
    it was not measured (a measurement from before energy was measured)."""
    return "-" if not m else energy_cell(m.get("energy_per_inference_j"), _energy_reason(m))


def versions_text(summary: dict) -> str:
    project = summary["project"]
    if not summary["versions"]:
        return f"{project['name']} ({project['path']}): no model versions yet; add one with `studio import`"
    return f"{project['name']} ({project['path']})\n" + versions_table(summary["versions"])


def devices_text(d: dict) -> str:
    cpu = d["cpu"]
    flags = ", ".join(name for name, on in (cpu.get("flags") or {}).items() if on) or "-"
    lines = [
        f"CPU       {cpu.get('model') or 'unknown'}: {cpu.get('physical_cores')} cores, "
        f"{cpu.get('logical_cores')} threads ({flags})",
        f"memory    {human_bytes(d.get('memory_bytes'))}",
    ]
    if d["cuda"]:
        for gpu in d["cuda"]:
            lines.append(f"cuda:{gpu['index']}    {gpu['name']}, {human_bytes(gpu.get('memory_bytes'))}")
    else:
        lines.append("CUDA      no GPU found")
    lines.append(f"ONNX Runtime providers: {', '.join(d['onnxruntime_providers']) or '-'}")
    lines.append(f"TensorRT  {d['tensorrt'] or 'not installed'}")
    for device, counter in (d.get("energy") or {}).items():
        found = counter.get("source") or energy_text(None, counter.get("missing"))
        lines.append(f"energy    {device}: {found}")
    return "\n".join(lines)


def demo_text(result: dict) -> str:
    baseline = result["baseline"]
    m = baseline["measurements"][-1]
    versions = [{**baseline, "latest_measurement": m}]
    return (
        f"Demo project: {result['project']}\n"
        + versions_table(versions)
        + f"\n\nNext: studio info {baseline['id']} --project {result['project']}"
    )


def _ratio(value: float | None, suffix: str = "×") -> str:
    return "-" if value is None else f"{value:.2f}{suffix}"


def outcome_text(o: dict) -> str:
    lines = [f"v{o['id']}  {o['name']}  ← v{o['parent_id']} by {o['technique']}", f"  file     {o['path']}"]
    before, after, r = o.get("parent_measurements"), o.get("measurements"), o.get("ratios")
    if before and after and r:
        rows = [
            ("top-1", _accuracy_cell(before), _accuracy_cell(after), _points(r["accuracy_points"])),
            (
                "p50 latency ms",
                f"{before['latency_ms']['p50']:.3f}",
                f"{after['latency_ms']['p50']:.3f}",
                speed_text(r.get("speed") or {"speedup": r["latency_p50"]}),
            ),
            (
                "size",
                human_bytes(before["size_bytes"]),
                human_bytes(after["size_bytes"]),
                _ratio(r["size"], "× smaller"),
            ),
            (
                "params",
                human_count(before["params"]),
                human_count(after["params"]),
                _ratio(r["params"], "× fewer"),
            ),
        ]
        lines.append(table(["", "before", "after", "change"], rows, align="lrrr"))
    for note in o.get("notes") or []:
        lines.append(f"  note: {note}")
    noisy = ((after or {}).get("timing") or {}).get("noise")
    if noisy:
        lines.append(f"  {noisy}: run the measurement again on a quieter machine before you trust it")
    verdict = ((r or {}).get("speed") or {}).get("verdict")
    if verdict in (SAME, SLOWER):  # the last line: a smaller model that is not faster misleads most
        lines.append(
            f"  not faster: v{o['id']} against v{o['parent_id']}: {speed_text(r['speed'])}, "
            f"at {after['threads']} thread(s), batch {after['batch']}"
        )
    return "\n".join(lines)


def _points(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f} points"


def recipe_text(result: dict) -> str:
    return "\n\n".join(outcome_text(step) for step in result["steps"])


def plugins_text(result: dict) -> str:
    """The techniques as a table, then each one's parameters: what ``--set`` takes, in words."""
    rows = []
    for t in result["techniques"]:
        if t["ok"]:
            rows.append((t["name"], t["title"], "/".join(t["accepts"]) + " → " + t["produces"], t["dataset"]))
        else:
            rows.append((t["name"], f"FAILED TO LOAD: {t['error']}", "-", "-"))
    parts = [table(["technique", "title", "takes → makes", "dataset"], rows, align="llll")]
    width = max(60, min(shutil.get_terminal_size((100, 24)).columns, 100))
    for t in result["techniques"]:
        if t["ok"] and t.get("parameters") is not None:
            parts.append(_parameters_text(t, width))
    parts.append("Set a parameter with: studio optimize MODEL TECHNIQUE --project DIR --set KEY=VALUE")
    return "\n\n".join(parts)


def _parameters_text(t: dict, width: int) -> str:
    params = t["parameters"]
    lines = [f"{t['name']}: {t['title']}"]
    if not params:
        return lines[0] + ": no parameters"
    name_width = max(len(p["name"]) for p in params)
    type_width = min(max(len(p["type"]) for p in params), 40)
    for p in params:
        default = "required" if p["required"] else f"default {_setting(p['default'])}"
        name = p["name"].ljust(name_width)
        head = f"  {name}  {p['type'].ljust(type_width)}  {default}"
        if len(head) > width:  # a long list of choices: the default goes under the type
            head = f"  {name}  {p['type']}\n  {' ' * name_width}  {default}"
        lines.append(head)
        if p["help"]:
            lines += textwrap.wrap(
                p["help"], width, initial_indent=" " * 6, subsequent_indent=" " * 6, break_on_hyphens=False
            )
    return "\n".join(lines)


def _setting(value: object) -> str:
    """A value written the way ``--set KEY=VALUE`` reads it back (YAML: true, null, [a, b])."""
    if isinstance(value, str):
        try:
            plain = yaml.safe_load(value) == value
        except yaml.YAMLError:
            plain = False
        return value if plain else json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_setting(v) for v in value) + "]"
    return json.dumps(value)


def technique_parameters(model: type[BaseModel]) -> list[dict]:
    """Each parameter of a technique's Params model: name, type in words, default, help.

    The JSON schema has all of it but reads poorly in a terminal and leaves out defaults made by
    a factory (an empty list); this is the flat form both the text view and scripts can use.
    """
    schema = model.model_json_schema()
    properties, defs = schema.get("properties", {}), schema.get("$defs", {})
    out = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        required = field.is_required()
        default = None if required else to_jsonable_python(field.get_default(call_default_factory=True))
        out.append(
            {
                "name": key,
                "type": _type_words(properties.get(key, {}), defs),
                "default": default,
                "required": required,
                "help": field.description or properties.get(key, {}).get("description") or "",
            }
        )
    return out


_TYPE_WORDS = {
    "integer": "int",
    "number": "float",
    "string": "text",
    "boolean": "true|false",
    "object": "mapping",
    "null": "null",
}


def _type_words(prop: dict, defs: dict) -> str:
    if "$ref" in prop:
        target = defs.get(prop["$ref"].rsplit("/", 1)[-1], {})
        return _type_words(target, defs) if "enum" in target else target.get("title", "object")
    if "anyOf" in prop:
        kinds = [_type_words(option, defs) for option in prop["anyOf"]]
        return " or ".join(dict.fromkeys(kinds))
    if "enum" in prop:
        return "|".join(_setting(v) for v in prop["enum"])
    if "const" in prop:
        return _setting(prop["const"])
    kind = prop.get("type")
    if kind == "array":
        words = f"list of {_type_words(prop.get('items', {}), defs)}"
        return words + (f", at least {prop['minItems']}" if prop.get("minItems") else "")
    words = _TYPE_WORDS.get(kind, kind or "any") if isinstance(kind, str) else "any"
    bounds = _bounds(prop)
    return f"{words}, {bounds}" if bounds else words


def _bounds(prop: dict) -> str:
    """A range as ``0 < x ≤ 1``: which ends are open matters (a ratio of 1 is refused)."""
    low = next(((prop[k], s) for k, s in (("exclusiveMinimum", "<"), ("minimum", "≤")) if k in prop), None)
    high = next(((prop[k], s) for k, s in (("exclusiveMaximum", "<"), ("maximum", "≤")) if k in prop), None)
    if low and high:
        return f"{_number(low[0])} {low[1]} x {high[1]} {_number(high[0])}"
    if low:
        return f"x {'>' if low[1] == '<' else '≥'} {_number(low[0])}"
    if high:
        return f"x {high[1]} {_number(high[0])}"
    return ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def jobs_text(result: dict) -> str:
    rows = []
    for j in result["jobs"]:
        what = j["technique"] or j["kind"]
        target = f"v{j['input_version_id']}" if j["input_version_id"] else "-"
        made = f"v{j['output_version_id']}" if j["output_version_id"] else "-"
        detail = j["error"] or j["message"] or ""
        rows.append(
            (
                j["id"],
                what,
                j["state"],
                f"{100 * (j['progress'] or 0):.0f}%",
                target,
                made,
                j["device"] or "-",
                detail[:60],
            )
        )
    if not rows:
        return "no jobs yet"
    return table(
        ["job", "what", "state", "done", "input", "output", "device", "message"], rows, align="rllrllll"
    )
