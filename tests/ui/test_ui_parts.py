"""The window's parts on their own: item models over plain data, the schema form, the job bridge."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from uitools import UI_MARKS

from studio.core.graph import Layer
from studio.core.techniques import discover, parse_params
from studio.jobs.events import JobEvent
from studio.store import JobRecord
from studio.ui.job_bridge import JobBridge
from studio.ui.models.compare_model import BETTER, WORSE, CompareModel
from studio.ui.models.figures import VersionFigures, baseline_of, pareto_front
from studio.ui.models.jobs_model import JobsTableModel
from studio.ui.models.layer_model import LayerFilterProxy, LayerTableModel
from studio.ui.models.lineage_model import VERSION_ID_ROLE, LineageModel
from studio.ui.widgets.technique_form import TechniqueForm, model_defaults

pytestmark = UI_MARKS


def fig(
    id: int, parent: int | None = None, latency=None, accuracy=None, size=1000, technique=None
) -> VersionFigures:
    return VersionFigures(
        id=id,
        name=f"m{id}",
        parent_id=parent,
        technique=technique or ("import" if parent is None else "quantize.static"),
        format="onnx",
        size_bytes=size,
        params=100,
        macs=1000,
        latency_ms=latency,
        accuracy=accuracy,
        measurements=int(latency is not None),
    )


def test_pareto_front_keeps_only_points_nothing_beats():
    points = [(1.0, 0.90), (2.0, 0.95), (1.5, 0.80), (3.0, 0.95), (0.5, 0.70)]
    assert pareto_front(points) == [4, 0, 1]


def test_baseline_is_the_root_of_the_lineage():
    figures = [fig(1), fig(2, 1), fig(3, 2)]
    assert baseline_of(figures, 3).id == 1


def test_lineage_model_nests_versions_under_their_parents(qtmodeltester):
    model = LineageModel()
    model.set_figures([fig(1, latency=1.0, accuracy=0.99), fig(2, 1), fig(3, 2), fig(4)])
    qtmodeltester.check(model)
    assert model.rowCount() == 2
    root = model.index(0, 0)
    child = model.index(0, 0, root)
    grandchild = model.index(0, 0, child)
    assert [i.data(VERSION_ID_ROLE) for i in (root, child, grandchild)] == [1, 2, 3]
    assert model.index(0, 2).data() == "1.000 ms"
    assert model.index(0, 3).data() == "99.00 %"
    assert "import" in model.index(0, 0).data(Qt.ItemDataRole.ToolTipRole)
    assert model.parent(grandchild) == child


def test_layer_table_sorts_numbers_as_numbers_and_filters(qtmodeltester):
    model = LayerTableModel()
    layers = [
        Layer(f"conv{i}", "Conv" if i % 2 else "Relu", (1, 8, 4, 4), 10**i, 9 * 10**i) for i in range(1, 6)
    ]
    model.set_layers(layers)
    qtmodeltester.check(model)
    proxy = LayerFilterProxy()
    proxy.setSourceModel(model)
    proxy.sort(5, Qt.SortOrder.DescendingOrder)  # MACs: 900000 before 90000 (a string sort would differ)
    assert [proxy.index(r, 1).data() for r in range(proxy.rowCount())] == [
        "conv5",
        "conv4",
        "conv3",
        "conv2",
        "conv1",
    ]
    assert proxy.index(0, 6).data() == f"{100 * 9e5 / sum(9 * 10**i for i in range(1, 6)):.1f} %"
    proxy.set_needle("relu")
    assert proxy.rowCount() == 2
    assert model.index(0, 3).data() == "1×8×4×4"
    assert model.index(0, 7).data() == ""  # not timed yet


def test_layer_times_fill_their_columns_and_sort_by_time(qtmodeltester):
    model = LayerTableModel()
    layers = [Layer(name, "Conv", (1, 8, 4, 4), 10, 90) for name in ("a", "b", "c")]
    model.set_layers(layers, {"a": {"ms": 0.5, "share": 0.2}, "b": {"ms": 2.0, "share": 0.8}})
    qtmodeltester.check(model)
    proxy = LayerFilterProxy()
    proxy.setSourceModel(model)
    proxy.sort(7, Qt.SortOrder.DescendingOrder)
    assert [proxy.index(r, 1).data() for r in range(3)] == ["b", "a", "c"]
    assert [proxy.index(r, 7).data() for r in range(3)] == ["2.000 ms", "0.500 ms", "fused"]
    assert proxy.index(0, 8).data() == "80.0 %"


def test_compare_model_colours_better_and_worse():
    model = CompareModel()
    model.set_versions(
        [fig(1, latency=2.0, accuracy=0.99, size=4000), fig(2, 1, latency=1.0, accuracy=0.98, size=1000)]
    )
    size_row, latency_row, accuracy_row = 0, 3, 6
    assert model.cell(size_row, 1)[1:] == ("4.00× smaller", 1)
    assert model.cell(latency_row, 1)[1:] == ("2.00× faster", 1)
    assert model.cell(accuracy_row, 1)[1:] == ("-1.00 pts", -1)
    assert model.index(size_row, 1).data(Qt.ItemDataRole.ForegroundRole).color() == BETTER
    assert model.index(accuracy_row, 1).data(Qt.ItemDataRole.ForegroundRole).color() == WORSE
    assert "v2 m2" in model.to_csv().splitlines()[0]


def test_latencies_whose_intervals_overlap_are_no_measurable_difference():
    import dataclasses

    model = CompareModel()
    base = dataclasses.replace(fig(1, latency=2.0), latency_ci95=(1.9, 2.2))
    close = dataclasses.replace(fig(2, 1, latency=1.85), latency_ci95=(1.6, 1.95))
    far = dataclasses.replace(fig(3, 1, latency=1.0), latency_ci95=(0.95, 1.05))
    model.set_versions([base, close, far])
    latency_row = 3
    assert model.cell(latency_row, 1)[1:] == ("no measurable difference", 0)
    assert model.cell(latency_row, 2)[1:] == ("2.00× faster", 1)
    # against its parent, a child shows the speed-up of the job that timed both together
    paired = {"speedup": 1.04, "ci95": [1.01, 1.07], "verdict": "no measurable difference", "rounds": 12}
    model.set_versions([base, dataclasses.replace(far, speed=paired)])
    assert model.cell(latency_row, 1)[1:] == ("no measurable difference", 0)
    slower = {"speedup": 0.8, "ci95": [0.78, 0.82], "verdict": "slower", "rounds": 12}
    model.set_versions([base, dataclasses.replace(far, speed=slower)])
    assert model.cell(latency_row, 1)[1:] == ("1.25× slower", -1)


def _record(job_id: int, state: str = "queued") -> JobRecord:
    now = datetime.now(timezone.utc)
    return JobRecord(
        job_id,
        "optimize",
        "quantize.static",
        {},
        state,
        1,
        None,
        None,
        "cpu",
        0.0,
        "",
        None,
        None,
        now,
        None,
        None,
    )


def test_jobs_model_follows_events():
    model = JobsTableModel()
    model.set_records([_record(1), _record(2)])
    assert model.row_at(0).id == 2  # newest first
    assert model.apply(JobEvent("started", 1, device="cpu"), clock=0.0)
    # the table's own estimate from the rate it saw (half done in 10 s)
    assert model.apply(JobEvent("progress", 1, 0.5, "calibrating"), clock=10.0)
    row = model.find(1)
    assert (row.state, row.progress, row.message, row.eta_s) == ("running", 0.5, "calibrating", 10.0)
    assert row.eta(14.0) == 6.0  # it counts down between reports
    model.apply(JobEvent("cancelled", 1))
    assert (row.state, row.message, model.active_count()) == ("cancelled", "cancelled by the user", 1)
    assert not model.apply(JobEvent("started", 99))


def test_bridge_delivers_events_from_another_thread_on_the_ui_thread(qtbot):
    bridge = JobBridge()
    seen: list[tuple[str, float | None, bool]] = []
    bridge.job_event.connect(
        lambda e: seen.append((e.kind, e.fraction, threading.current_thread() is threading.main_thread()))
    )

    def manager_thread() -> None:
        bridge.post(JobEvent("started", 7))
        for i in range(50):
            bridge.post(JobEvent("progress", 7, i / 50))
        bridge.post(JobEvent("succeeded", 7, 1.0))

    manager = threading.Thread(target=manager_thread)
    with qtbot.waitSignal(bridge.job_finished, timeout=5000) as blocker:
        manager.start()
        manager.join()  # all 52 events are posted before the UI thread's event loop turns
    assert blocker.args == [7, "succeeded"]
    # One delivery for the burst: the events in order, progress coalesced to its latest value.
    assert seen == [("started", None, True), ("progress", 49 / 50, True), ("succeeded", 1.0, True)]


@pytest.mark.parametrize("entry", [e for e in discover() if e.technique], ids=lambda e: e.name)
def test_every_technique_gets_a_form_whose_defaults_validate(qtbot, entry):
    form = TechniqueForm()
    qtbot.addWidget(form)
    form.set_schema(entry.technique.Params.model_json_schema(), model_defaults(entry.technique.Params))
    values = form.values()
    assert set(values) == set(entry.technique.Params.model_fields)
    parse_params(entry.technique, values)  # what the form shows is what the technique accepts


def test_form_widgets_follow_the_schema(qtbot):
    from studio_quantization.static import StaticQuantization

    form = TechniqueForm()
    qtbot.addWidget(form)
    form.set_schema(StaticQuantization.Params.model_json_schema())
    samples = form.editor("calibration_samples")
    assert (samples.minimum(), samples.maximum(), samples.value()) == (16, 4096, 128)
    method = form.editor("calibration_method")
    assert [method.itemText(i) for i in range(method.count())] == ["minmax", "entropy", "percentile"]
    help_text = StaticQuantization.Params.model_fields["calibration_method"].description
    assert method.toolTip() == f"{help_text}\nDefault: minmax"
    assert samples.toolTip().splitlines()[1:] == ["Range [16, 4096]", "Default: 128"]
    form.editor("nodes_to_exclude").setText("conv1, conv2")
    form.set_values({"per_channel": False, "calibration_method": "entropy"})
    values = form.values()
    assert values["nodes_to_exclude"] == ["conv1", "conv2"]
    assert (values["per_channel"], values["calibration_method"]) == (False, "entropy")


def test_optional_numbers_are_unset_until_switched_on(qtbot):
    from studio_quantization.auto import AutoQuantization

    form = TechniqueForm()
    qtbot.addWidget(form)
    form.set_schema(AutoQuantization.Params.model_json_schema())
    assert form.values()["cosine_floor"] is None
    form.set_values({"cosine_floor": 0.99995})  # a tolerance this tight must not be rounded to 1
    assert form.values()["cosine_floor"] == pytest.approx(0.99995, abs=1e-9)
    assert form.editor("cosine_floor").text() == "0.99995"
    floor = form.editor("cosine_floor")
    assert (floor.minimum(), floor.maximum()) == (0.0, 1.0)


def test_a_value_that_leaves_the_choice_to_the_technique_reads_automatic(qtbot):
    from studio_distillation.distill import Distillation

    form = TechniqueForm()
    qtbot.addWidget(form)
    form.set_schema(Distillation.Params.model_json_schema(), model_defaults(Distillation.Params))
    rate = form.editor("learning_rate")
    assert rate.text() == "automatic" and form.values()["learning_rate"] == 0.0
    rate.setFocus()
    qtbot.keyClick(rate, Qt.Key.Key_Up)  # one step up is a figure again
    assert rate.text() != "automatic" and form.values()["learning_rate"] > 0
    assert form.editor("epochs").text() == "10"  # a plain figure stays a figure


def test_min_cosine_is_the_version_s_to_its_parent_even_after_a_later_measurement(tmp_path: Path):
    from studio.store import Store
    from studio.ui.models.figures import METRICS, version_figures

    with Store.open(tmp_path / "studio.sqlite", create=True) as store:
        made = {"format": "onnx", "main_file": "m.onnx", "files": ["m.onnx"], "size_bytes": 1}
        parent = store.add_version(name="base", artifact="a" * 64, **made)
        paired = store.add_version(name="int8", artifact="b" * 64, parent_id=parent.id, **made)
        store.add_version(  # measured never: the gate has its figure
            name="fp16",
            artifact="c" * 64,
            parent_id=parent.id,
            details={"gate": {"cosine_min": 0.97}},
            **made,
        )
        store.add_measurement(
            version_id=paired.id, reference_version_id=parent.id, device="cpu", runtime="onnxruntime",
            fidelity={"cosine_min": 0.9912},
        )  # fmt: skip
        store.add_measurement(version_id=paired.id, device="cpu", runtime="onnxruntime")  # alone, later
        figures = {f.name: f for f in version_figures(store.list_versions(), store.list_measurements())}
    assert figures["int8"].cosine_min == 0.9912  # not lost to the later measurement without a reference
    assert figures["fp16"].cosine_min == 0.97  # the result gate's, on held-out samples
    assert figures["base"].cosine_min is None
    assert "Min. cosine to parent" in [m.title for m in METRICS]


def test_the_window_logic_below_the_widgets_needs_no_qt():
    """Session, pool settings, version views and figures are plain Python: usable headless."""
    import subprocess
    import sys

    code = (
        "import sys\nsys.modules['PySide6'] = None\nsys.modules['pyqtgraph'] = None\n"
        "import studio.ui.session, studio.ui.pool, studio.ui.version_view, studio.ui.models.figures\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "ok", result.stderr


def test_background_work_that_outlives_the_window_is_dropped_quietly(qtbot):
    import shiboken6

    from studio.ui.background import Background

    background = Background()
    release, delivered = threading.Event(), []
    background.run(lambda: release.wait(30), delivered.append)
    assert not background.close(50), "the task is still running"
    background.run(lambda: 2, delivered.append)  # the window is closing: refused
    for relay in list(background._relays):
        shiboken6.delete(relay)  # what closing the window does to the task's way back
    release.set()
    assert background._pool.waitForDone(10_000)
    qtbot.wait(50)
    assert delivered == []
