"""Reads a studio command's --json on stdin and fails unless it holds what a GPU check line expects.

    ... --json | python3 tests/benchmarks/gpu_expect.py notes 'Trained on a GPU' 'bf16 mixed precision'
    ... --json | python3 tests/benchmarks/gpu_expect.py measured energy_per_inference_j peak_memory_bytes
    ... --json | python3 tests/benchmarks/gpu_expect.py swept

It prints what it found either way, for the check's log.
"""

from __future__ import annotations

import json
import sys


def main(kind: str, *wanted: str) -> int:
    payload = json.load(sys.stdin)
    if kind == "notes":
        notes = " ".join(payload.get("notes") or [])
        print("notes:", notes)
        missing = [phrase for phrase in wanted if phrase not in notes]
    elif kind == "measured":
        print({key: payload.get(key) for key in wanted}, payload.get("execution"))
        missing = [key for key in wanted if not payload.get(key)]
    elif kind == "swept":
        rows = payload.get("measurements") or []
        for row in rows:
            print(
                row["batch"],
                row.get("throughput_per_s"),
                row.get("peak_memory_bytes"),
                row.get("energy_per_inference_j"),
            )
        print("stopped:", payload.get("stopped"))
        missing = [] if len(rows) >= 2 else ["at least two batches"]
    else:
        raise SystemExit(f"unknown check {kind!r}")
    if missing:
        print("missing:", ", ".join(missing))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
