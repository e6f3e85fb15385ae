"""Before/after timings through the real command line: a step's speed-up comes from one job that
times parent and child in alternating rounds, with its interval; an "optimization" that changes
nothing is called no measurable difference, and a busy machine is named, not hidden."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest
from faulty_plugin import studio_with_faulty

from studio.core.resources import resource


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "p"
    assert (
        studio_with_faulty("import", resource("demo", "digits_cnn.onnx"), "--project", root).returncode == 0
    )
    return root


def test_a_step_that_changes_nothing_is_no_measurable_difference(project: Path) -> None:
    done = studio_with_faulty("optimize", "v1", "faulty.copy", "--data", "digits", "--project", project)
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("  not faster: v2 against v1: no measurable difference ("), last
    assert "× faster" not in done.stdout  # not even in the table

    listed = studio_with_faulty("versions", "--project", project, "--json")
    child = next(v for v in json.loads(listed.stdout)["versions"] if v["id"] == 2)
    speed = child["speed_vs_parent"]
    assert speed["verdict"] == "no measurable difference" and speed["rounds"] >= 12
    low, high = speed["ci95"]
    assert low <= speed["speedup"] <= high and low <= 1.03 and high >= 1 / 1.03
    measurement = child["latest_measurement"]
    assert measurement["reference_version_id"] == 1  # the child was timed against its parent
    assert measurement["timing"]["paired"]["reference_runs"] > 0
    assert "no gain" in studio_with_faulty("versions", "--project", project).stdout


def _burn(stop) -> None:
    while not stop.is_set():
        pass


def test_a_busy_machine_is_named_in_the_measurement(project: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    # twice as many spinning processes as CPUs: whatever the scheduler does, others hold most of them
    burners = [ctx.Process(target=_burn, args=(stop,)) for _ in range(2 * (os.cpu_count() or 2))]
    for burner in burners:
        burner.start()
    try:
        busy = studio_with_faulty(
            "bench", "v1", "--project", project, "--threads", "1", "--min-seconds", "1", "--json"
        )
    finally:
        stop.set()
        for burner in burners:
            burner.join(10)
    assert busy.returncode == 0, busy.stderr
    timing = json.loads(busy.stdout)["timing"]
    noted = timing["noise"] or ""
    assert noted.startswith("noisy: ") and "other processes" in noted, timing
    assert timing["load"]["other_busy_cpus"] > 1
    shown = studio_with_faulty("versions", "--project", project).stdout
    assert "~" in shown and "measure again before trusting it" in shown


def test_bench_layers_times_every_node_and_info_shows_the_slowest(project: Path) -> None:
    timed = studio_with_faulty(
        "bench", "v1", "--project", project, "--threads", "1", "--min-seconds", "0", "--layers", "--json"
    )
    assert timed.returncode == 0, timed.stderr
    layers = json.loads(timed.stdout)["timing"]["layers"]
    assert sum(row["share"] for row in layers) == pytest.approx(1.0)
    assert layers == sorted(layers, key=lambda row: -row["ms"]) and all(row["ms"] > 0 for row in layers)
    shown = studio_with_faulty("info", "v1", "--project", project, "--layers", "3").stdout.splitlines()
    header = next(line for line in shown if line.startswith("name ") and "MACs" in line)
    assert header.split()[-5:] == ["share", "time", "ms", "of", "time"]
    rows = shown[shown.index(header) + 2 :]
    assert [row.split()[0] for row in rows] == [row["name"] for row in layers[:3]]  # slowest first
