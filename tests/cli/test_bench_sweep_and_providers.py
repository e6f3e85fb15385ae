"""`studio bench` as a user runs it: a batch sweep recorded measurement by measurement, a GPU provider
this ONNX Runtime lacks refused before anything is timed or written, energy never shown as 0."""

from __future__ import annotations

from pathlib import Path

import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper

from studio.core.energy import meter_for
from studio.core.resources import resource
from studio.project import Project

DEMO_ONNX = resource("demo", "digits_cnn.onnx")  # takes any batch
QUICK = ["--min-runs", "3", "--min-seconds", "0.05"]


def _fixed_batch_model(path: Path) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 3])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "fixed", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_a_sweep_records_each_batch_and_says_why_it_stopped(studio_cli, tmp_path: Path) -> None:
    project = tmp_path / "p"
    done = studio_cli(
        "bench", DEMO_ONNX, "--project", project, "--sweep", "--max-batch", "4", *QUICK, "--json"
    )
    assert done.returncode == 0, done.stderr
    payload = done.json()
    steps = payload["measurements"]
    assert [m["batch"] for m in steps] == [1, 2, 4]
    assert payload["stopped"] in (
        "reached the largest batch asked for (4)",
        "throughput grew less than 5 % at 2 doublings in a row, up to batch 4",
    )
    with Project.open(project) as opened:
        stored = opened.store.list_measurements()
    assert [m.id for m in stored] == [m["id"] for m in steps]
    assert {m.execution["sweep"] for m in stored} == {payload["sweep"]}
    assert all(m.throughput_per_s > 0 for m in stored)
    meter = meter_for("cpu")
    for m in stored:  # energy: the machine's counter over the timed runs, or its reason, never 0
        if meter.available:
            assert m.energy_per_inference_j > 0 and m.execution["energy"]["source"] == "rapl"
        else:
            assert m.energy_per_inference_j is None
            assert m.execution["energy"] == {"missing": meter.reason}
        assert m.peak_memory_bytes is None and m.execution["peak_memory"] == {
            "missing": "the model ran on the CPU"
        }

    text = studio_cli("bench", "v1", "--project", project, "--sweep", "--max-batch", "2", *QUICK)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == "batch sweep of v1 (digits_cnn)"
    assert lines[1].split() == ["batch", "p50", "ms", "per", "s", "peak", "GPU", "memory", "energy/inference",
                                "measurement"]  # fmt: skip
    assert [line.split()[0] for line in lines[3:5]] == ["1", "2"]
    assert any(line.startswith("stopped: ") for line in lines)
    if not meter.available:
        assert f"n/a: energy not available on this machine: {meter.reason}" in lines
        assert " 0 J" not in text.stdout and "0.00" not in text.stdout


@pytest.mark.skipif(
    "CUDAExecutionProvider" in onnxruntime.get_available_providers(), reason="this onnxruntime has CUDA"
)
def test_a_cuda_provider_this_onnxruntime_lacks_is_refused(studio_cli, tmp_path: Path) -> None:
    project = tmp_path / "p"
    done = studio_cli("bench", DEMO_ONNX, "--project", project, "--provider", "cuda", *QUICK)
    assert done.returncode == 2
    available = ", ".join(onnxruntime.get_available_providers())
    assert done.stderr.startswith(
        f"studio: error: ONNX Runtime on this machine has no CUDAExecutionProvider (it has {available}): "
        "install onnxruntime-gpu"
    )
    assert len(done.stderr.strip().splitlines()) == 1
    assert not project.exists()  # refused before anything was written, let alone timed


def _memory_hungry_model(path: Path) -> Path:
    """x (batch, 1) expanded to (batch, batch**40) and summed: batch 1 takes 4 bytes, batch 2 asks
    ONNX Runtime for 8 TiB, which no machine gives (without overcommit), so it runs out of memory."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch"])
    nodes = [
        helper.make_node("Shape", ["x"], ["batch"], start=0, end=1),
        helper.make_node("Cast", ["batch"], ["batch_f"], to=TensorProto.FLOAT),
        helper.make_node("Pow", ["batch_f", "forty"], ["width_f"]),
        helper.make_node("Cast", ["width_f"], ["width"], to=TensorProto.INT64),
        helper.make_node("Concat", ["batch", "width"], ["wide_shape"], axis=0),
        helper.make_node("Expand", ["x", "wide_shape"], ["wide"]),
        helper.make_node("ReduceSum", ["wide", "axes"], ["y"], keepdims=0),
    ]
    constants = [
        helper.make_tensor("forty", TensorProto.FLOAT, [1], [40.0]),
        helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
    ]
    graph = helper.make_graph(nodes, "hungry", [x], [y], constants)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _huge_allocations_fail() -> bool:
    """Linux refuses an allocation larger than the machine unless told to overcommit (mode 1)."""
    mode = Path("/proc/sys/vm/overcommit_memory")
    return mode.exists() and mode.read_text().strip() in ("0", "2")


@pytest.mark.skipif(not _huge_allocations_fail(), reason="this kernel would grant 8 TiB (overcommit)")
def test_a_sweep_stops_at_the_batch_that_runs_out_of_memory(studio_cli, tmp_path: Path) -> None:
    model = _memory_hungry_model(tmp_path / "hungry.onnx")
    project = tmp_path / "p"
    done = studio_cli("bench", model, "--project", project, "--sweep", "--max-batch", "8", *QUICK, "--json")
    assert done.returncode == 0, done.stderr
    payload = done.json()
    assert [m["batch"] for m in payload["measurements"]] == [1]
    assert payload["stopped"].startswith("batch 2 did not fit in memory (out of memory at batch 2 on cpu: ")
    assert "Failed to allocate memory" in payload["stopped"]
    with Project.open(project) as opened:
        assert [m.batch for m in opened.store.list_measurements()] == [1]  # the failed batch records nothing


def test_a_sweep_of_a_fixed_batch_model_is_refused_in_one_sentence(studio_cli, tmp_path: Path) -> None:
    model = _fixed_batch_model(tmp_path / "fixed.onnx")
    project = tmp_path / "p"
    done = studio_cli("bench", model, "--project", project, "--sweep", *QUICK)
    assert done.returncode == 2
    assert done.stderr == (
        "studio: error: the model was exported for batches of exactly 4: a batch sweep cannot change its batch\n"
    )
    assert not project.exists()
    again = studio_cli("bench", model, "--project", project, "--sweep", "--batch", "4", *QUICK)
    assert again.returncode == 2 and "leave out --batch" in again.stderr


def test_a_measurement_prints_its_energy_and_versions_show_it(studio_cli, tmp_path: Path) -> None:
    project = tmp_path / "p"
    done = studio_cli("bench", DEMO_ONNX, "--project", project, *QUICK)
    assert done.returncode == 0, done.stderr
    meter = meter_for("cpu")
    energy_line = next(line for line in done.stdout.splitlines() if line.startswith("  energy"))
    if meter.available:
        assert energy_line.endswith("(rapl, over the timed runs)")
    else:
        assert energy_line == f"  energy       not available on this machine: {meter.reason}"
    versions = studio_cli("versions", "--project", project)
    assert versions.returncode == 0 and "energy/inf" in versions.stdout.splitlines()[1]


@pytest.mark.gpu
def test_on_a_gpu_the_provider_nodes_memory_and_energy_are_recorded(studio_cli, tmp_path: Path) -> None:
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has no CUDA (onnxruntime-gpu is not installed)")
    from studio.core.runtime import cuda_device_count

    if cuda_device_count() == 0:
        pytest.skip("no CUDA GPU on this machine")
    project = tmp_path / "p"
    done = studio_cli("bench", DEMO_ONNX, "--project", project, "--provider", "cuda", "--sweep", "--max-batch", "8",
                      *QUICK, "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    for m in done.json()["measurements"]:
        placement = m["execution"]["placement"]
        assert m["device"] == "cuda:0" and placement["requested"] == "CUDAExecutionProvider"
        assert sum(placement["nodes"].values()) > 0
        cpu_nodes = placement["nodes"].get("CPUExecutionProvider", 0)
        assert (placement["fallback"] is None) == (cpu_nodes == 0)
        memory, energy = m["execution"]["peak_memory"], m["execution"]["energy"]
        assert (m["peak_memory_bytes"] or 0) > 0 or memory["missing"]
        assert (m["energy_per_inference_j"] or 0) > 0 or energy["missing"]
