"""The Charts tab with energy per inference as the scatter's x axis (a version without it left out,
never drawn at 0), the compare table's energy and memory rows, and throughput by batch of a sweep.
Figures come from measurements recorded in a real project store, as `studio bench` records them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from uitools import UI_MARKS

from studio.measurements import record_measurement
from studio.store import Store
from studio.tables import NOT_AVAILABLE
from studio.ui.models.compare_model import CompareModel
from studio.ui.models.figures import METRICS, version_figures
from studio.ui.widgets.charts_view import ChartsView

pytestmark = UI_MARKS
NO_RAPL = "no RAPL counters under /sys/class/powercap"


def _result(
    batch: int, per_s: float, *, energy: dict, sweep: str | None = None, memory: int | None = None
) -> dict:
    """A measurement's result as the measuring process returns it (studio.core.benchmark)."""
    p50 = batch * 1000.0 / per_s
    execution = {"energy": energy, "peak_memory": {"bytes": memory, "source": "torch"} if memory else {}}
    if sweep:
        execution["sweep"] = sweep
    return {
        "device": "cuda:0" if memory else "cpu",
        "runtime": "onnxruntime",
        "provider": "CPUExecutionProvider",
        "batch": batch,
        "threads": 1,
        "accuracy": {"top1": 0.9},
        "latency_ms": {"p50": p50, "p90": p50, "p99": p50, "mean": p50, "std": 0.0},
        "throughput_per_s": per_s,
        "execution": execution,
    }


@pytest.fixture
def figures(tmp_path: Path):
    with Store.open(tmp_path / "studio.sqlite", create=True) as store:
        store.set_project("charts", "0.1.0")
        common = {"format": "onnx", "main_file": "m.onnx", "files": ["m.onnx"], "size_bytes": 1000}
        gpu = store.add_version(name="gpu", artifact="a" * 64, **common)
        cpu = store.add_version(name="cpu", artifact="b" * 64, parent_id=gpu.id, **common)
        old = store.add_version(name="old", artifact="c" * 64, **common)
        measured = {"joules_per_inference": 0.004, "source": "nvml"}
        for batch, per_s in ((1, 100.0), (2, 180.0), (4, 200.0)):
            energy = {**measured, "joules_per_inference": 0.004 / batch}
            result = _result(batch, per_s, energy=energy, sweep="s1", memory=batch << 20)
            record_measurement(store, gpu, result, dataset=None)
        record_measurement(store, gpu, _result(1, 120.0, energy=measured, memory=1 << 20), dataset=None)
        record_measurement(store, cpu, _result(1, 90.0, energy={"missing": NO_RAPL}), dataset=None)
        store.add_measurement(version_id=old.id, device="cpu", runtime="onnxruntime", accuracy={"top1": 0.8},
                              latency_p50_ms=5.0, throughput_per_s=200.0)  # fmt: skip
        return version_figures(store.list_versions(), store.list_measurements())


def test_energy_is_an_axis_and_a_missing_figure_is_never_plotted(qtbot, figures) -> None:
    gpu, cpu, old = figures
    assert (gpu.energy_j, cpu.energy_j, cpu.energy_missing, old.energy_missing) == (
        0.004,
        None,
        NO_RAPL,
        "not measured",
    )
    view = ChartsView()
    qtbot.addWidget(view)
    view.set_figures(figures, gpu.id)
    assert len(view.scatter.scatter.data) == 3  # latency: every version
    view.x_axis.setCurrentIndex(view.x_axis.findData("energy"))
    assert view.scatter.plot.getAxis("bottom").labelText == "Energy per inference (mJ)"
    assert [(p["data"], p["x"]) for p in view.scatter.scatter.data] == [(gpu.id, pytest.approx(4.0))]
    assert view.scatter.message.toPlainText() == ""

    view.set_figures([cpu, old], cpu.id)  # no version has the figure: the plot says why
    assert len(view.scatter.scatter.data) == 0
    assert view.scatter.message.toPlainText() == f"Energy per inference: {NOT_AVAILABLE}\n{NO_RAPL}"
    view.x_axis.setCurrentIndex(view.x_axis.findData("latency"))
    assert len(view.scatter.scatter.data) == 2 and view.scatter.message.toPlainText() == ""

    unlabelled = [dataclasses.replace(f, accuracy=None) for f in (cpu, old)]  # timed without labels
    view.set_figures(unlabelled, cpu.id)
    assert len(view.scatter.scatter.data) == 0
    assert view.scatter.message.toPlainText().startswith("No version has a top-1 accuracy yet")


def test_the_compare_table_shows_energy_memory_and_why_energy_is_missing(figures) -> None:
    gpu, cpu, old = figures
    model = CompareModel()
    model.set_versions([gpu, cpu, old])
    rows = {metric.title: row for row, metric in enumerate(METRICS)}
    energy, memory = rows["Energy per inference"], rows["Peak GPU memory"]
    assert [model.cell(energy, column)[0] for column in range(3)] == ["4 mJ", NOT_AVAILABLE, "–"]
    assert model.cell(memory, 0)[0] == "1.0 MiB" and model.cell(memory, 1)[0] == "–"
    assert model.data(model.index(energy, 1), role=3) == NO_RAPL  # the tooltip gives the reason


def test_throughput_by_batch_of_the_latest_sweep(qtbot, figures, tmp_path: Path) -> None:
    gpu, cpu, _ = figures
    view = ChartsView()
    qtbot.addWidget(view)
    view.resize(700, 500)
    view.set_figures(figures, gpu.id)
    assert [(row["batch"], row["throughput_per_s"]) for row in view.sweep.rows] == [
        (1, 100.0),
        (2, 180.0),
        (4, 200.0),
    ]
    assert [row["peak_memory_bytes"] for row in view.sweep.rows] == [1 << 20, 2 << 20, 4 << 20]
    assert view.sweep.message.toPlainText() == ""
    view.tabs.setCurrentWidget(view.sweep)
    view.export_csv(tmp_path / "sweep.csv")
    assert (tmp_path / "sweep.csv").read_text().splitlines()[0].startswith("batch,throughput_per_s")
    view.export_image(tmp_path / "sweep.png")
    assert (tmp_path / "sweep.png").stat().st_size > 1000
    view.set_selected(cpu.id)
    assert view.sweep.rows == []
    assert (
        view.sweep.message.toPlainText()
        == f"No batch sweep of {cpu.label} yet:\nstudio bench v{cpu.id} --sweep"
    )
