"""What the command line prints without `--json`: the same payloads, as tables a person reads."""

from __future__ import annotations

from studio.tables import human_bytes, human_count, percent, table


def _shape(shape: list) -> str:
    return "×".join("?" if d is None else str(d) for d in shape) or "scalar"


def _tensors(title: str, specs: list[dict]) -> str:
    rows = [(s["name"], _shape(s["shape"]), s["dtype"]) for s in specs]
    return f"{title}:\n" + table(["name", "shape", "dtype"], rows, align="lll")


def version_text(v: dict) -> str:
    parent = f" (from v{v['parent_id']})" if v.get("parent_id") else ""
    lines = [
        f"v{v['id']}  {v['name']}{parent}",
        f"  format     {v['format']}",
        f"  size       {human_bytes(v['size_bytes'])}",
        f"  params     {human_count(v['params'])}",
        f"  MACs       {human_count(v['macs'])}",
        f"  artifact   {v['artifact'][:16]}…",
    ]
    if v.get("technique") and v["technique"] != "import":
        lines.append(f"  technique  {v['technique']} {v.get('technique_params') or ''}")
    return "\n".join(lines)


def info_text(info: dict, *, limit: int | None = None) -> str:
    total = info["macs"] or 0
    layers = info["layers"]
    if limit is not None:
        layers = sorted(layers, key=lambda layer: layer["macs"], reverse=True)[:limit]
    rows = [
        (
            layer["name"],
            layer["op"],
            _shape(layer["output_shape"]) if layer["output_shape"] is not None else "?",
            layer["params"],
            layer["macs"],
            f"{100 * layer['macs'] / total:.1f}%" if total else "-",
        )
        for layer in layers
    ]
    ops = ", ".join(f"{op} {n}" for op, n in sorted(info["op_histogram"].items(), key=lambda kv: -kv[1]))
    head = [
        f"format: {info['format']}   size: {human_bytes(info['size_bytes'])}   "
        f"params: {human_count(info['params'])}   MACs: {human_count(info['macs'])}"
        + (f"   opset: {info['opset']}" if info.get("opset") else ""),
        _tensors("inputs", info["inputs"]),
        _tensors("outputs", info["outputs"]),
        f"operators: {ops}",
        "layers:",
        table(["name", "op", "output", "params", "MACs", "share"], rows, align="lllrrr"),
    ]
    return "\n".join(head)


def _accuracy_cell(m: dict | None) -> str:
    if not m or not m.get("accuracy"):
        return "-"
    return percent(m["accuracy"].get("top1"))


def measurement_text(m: dict) -> str:
    lat = m["latency_ms"]
    lines = [
        f"measurement {m['id']} of v{m['version']['id']} ({m['version']['name']})"
        f" on {m['device']} / {m['runtime']} ({m.get('provider') or '-'}), batch {m['batch']}, "
        f"{m['threads']} thread(s), {m['runs']} runs",
        f"  latency ms   p50 {lat['p50']:.3f}   p90 {lat['p90']:.3f}   p99 {lat['p99']:.3f}"
        f"   mean {lat['mean']:.3f} ± {lat['std']:.3f}",
        f"  throughput   {m['throughput_per_s']:.1f} samples/s",
        f"  size         {human_bytes(m['size_bytes'])}   params {human_count(m['params'])}",
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
    return "\n".join(lines)


def versions_table(versions: list[dict]) -> str:
    children: dict[int | None, list[dict]] = {}
    for v in versions:
        children.setdefault(v["parent_id"], []).append(v)
    rows: list[tuple] = []

    def walk(parent: int | None, depth: int) -> None:
        for v in children.get(parent, []):
            m = v.get("latest_measurement")
            rows.append(
                (
                    f"v{v['id']}",
                    "  " * depth + ("└ " if depth else "") + v["name"],
                    v["technique"] or "-",
                    v["format"],
                    human_count(v["params"]),
                    human_bytes(v["size_bytes"]),
                    _accuracy_cell(m),
                    "-" if not m else f"{m['latency_ms']['p50']:.3f}",
                    "-" if not m else f"{m['latency_ms']['p99']:.3f}",
                    "-" if not m else f"{m['throughput_per_s']:.1f}",
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
        "p50 ms",
        "p99 ms",
        "per s",
    ]
    return table(headers, rows, align="llllrrrrrr")


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
                _ratio(r["latency_p50"], "× faster"),
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
    return "\n".join(lines)


def _points(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f} points"


def recipe_text(result: dict) -> str:
    return "\n\n".join(outcome_text(step) for step in result["steps"])


def plugins_text(result: dict) -> str:
    rows = []
    for t in result["techniques"]:
        if t["ok"]:
            rows.append((t["name"], t["title"], "/".join(t["accepts"]) + " → " + t["produces"], t["dataset"]))
        else:
            rows.append((t["name"], f"FAILED TO LOAD: {t['error']}", "-", "-"))
    return table(["technique", "title", "takes → makes", "dataset"], rows, align="llll")


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
