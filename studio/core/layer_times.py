"""Where a model spends its time, node by node, from ONNX Runtime's own profiler.

MACs say where the arithmetic is; they do not say where the time goes (a memory-bound
LayerNorm, a Transpose, a dequantization can cost more than their MACs suggest). ONNX Runtime's
profiler times every node it runs. It slows every run down, so it runs in a session of its own,
after the headline timing, and its figures are shares of its own runs, never latencies to quote.

Node names are the graph's; where ONNX Runtime fused several nodes into one kernel the time is
the fused kernel's, under the name of the node it kept.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

PROFILED_RUNS = 50


def profile_layers(open_profiled: Callable[[Path], object], feeds: dict, *, warmup: int = 5) -> list[dict]:
    """Each node's mean time per run (ms) and share of the nodes' total, slowest first.

    ``open_profiled(prefix)`` opens a runner whose session profiles into files named ``prefix*``.
    """
    folder = Path(tempfile.mkdtemp(prefix="studio-profile-"))
    try:
        runner = open_profiled(folder / "profile")
        try:
            for _ in range(warmup):
                runner.run(feeds)
            for _ in range(PROFILED_RUNS):
                runner.run(feeds)
            path = runner.end_profiling()
        finally:
            runner.close()
        return node_times(json.loads(Path(path).read_text()), skip=warmup)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def node_times(events: list[dict], *, skip: int = 0) -> list[dict]:
    """Per-node times from a profile's events, leaving out the first ``skip`` runs (warm-up).

    Each run is one ``model_run`` event; a node's kernel events between two of them belong to
    that run. The times are means over the runs kept.
    """
    run_starts = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
    first_kept = run_starts[skip] if len(run_starts) > skip else 0
    kept = max(len(run_starts) - skip, 1)
    total_us: dict[str, float] = defaultdict(float)
    ops: dict[str, str] = {}
    for event in events:
        name = event.get("name", "")
        if event.get("cat") != "Node" or not name.endswith("_kernel_time") or event.get("ts", 0) < first_kept:
            continue
        node = name.removesuffix("_kernel_time")
        total_us[node] += float(event.get("dur", 0))
        ops[node] = (event.get("args") or {}).get("op_name", "")
    whole = sum(total_us.values()) or 1.0
    rows = [
        {"name": node, "op": ops[node], "ms": us / kept / 1000.0, "share": us / whole}
        for node, us in total_us.items()
    ]
    return sorted(rows, key=lambda row: -row["ms"])


def nodes_by_provider(events: list[dict]) -> dict[str, int]:
    """How many of the nodes ONNX Runtime ran (after its fusions) each execution provider ran,
    from a profile's kernel events (``args.provider``): where a model actually ran."""
    providers: dict[str, str] = {}
    for event in events:
        name = event.get("name", "")
        if event.get("cat") == "Node" and name.endswith("_kernel_time"):
            provider = (event.get("args") or {}).get("provider") or "unknown"
            providers[name.removesuffix("_kernel_time")] = provider
    counts: dict[str, int] = defaultdict(int)
    for provider in providers.values():
        counts[provider] += 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))
