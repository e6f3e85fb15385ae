"""Provider honesty: a provider this ONNX Runtime lacks is refused before anything is timed, and
where a GPU provider was asked for, the nodes the CPU ran are counted from ONNX Runtime's profile."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper

from studio.api import StudioError
from studio.core.benchmark import BenchmarkSettings, MeasurementRequest, ModelRef, measure_here
from studio.core.layer_times import nodes_by_provider
from studio.core.models import collect_files
from studio.core.runtime import OnnxRunner, check_provider, fallback_sentence, open_runner, provider_name

QUICK = {"warmup": 2, "min_runs": 5, "min_seconds": 0.05, "max_seconds": 5.0}
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
CPU = "CPUExecutionProvider"
needs_cpu_only_onnxruntime = pytest.mark.skipif(
    CUDA in onnxruntime.get_available_providers(), reason="this onnxruntime has CUDA"
)


@pytest.fixture(scope="module")
def three_nodes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """x (batch, 4) → MatMul → Relu → Sigmoid: three nodes that no optimisation fuses."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    weight = helper.make_tensor("w", TensorProto.FLOAT, [4, 4], np.arange(16, dtype=np.float32) / 16)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"], name="matmul"),
        helper.make_node("Relu", ["m"], ["r"], name="relu"),
        helper.make_node("Sigmoid", ["r"], ["y"], name="sigmoid"),
    ]
    graph = helper.make_graph(nodes, "three", [x], [y], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path_factory.mktemp("placement") / "three.onnx"
    onnx.save(model, path)
    return path


def test_node_counts_from_a_real_profile(three_nodes: Path, tmp_path: Path) -> None:
    """A profile written by ONNX Runtime itself: two runs, three nodes, each counted once."""
    options = onnxruntime.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(tmp_path / "run")
    session = onnxruntime.InferenceSession(str(three_nodes), options, providers=["CPUExecutionProvider"])
    for _ in range(2):
        session.run(None, {"x": np.ones((2, 4), np.float32)})
    events = json.loads(Path(session.end_profiling()).read_text())
    assert nodes_by_provider(events) == {"CPUExecutionProvider": 3}
    assert (
        fallback_sentence("CPUExecutionProvider", ["CPUExecutionProvider"], {"CPUExecutionProvider": 3})
        is None
    )


def test_the_runner_records_where_its_nodes_ran_then_stops_profiling(three_nodes: Path) -> None:
    runner = OnnxRunner(three_nodes, device="cpu", threads=1, placement=True)
    x = {"x": np.ones((3, 4), np.float32)}
    first = runner.run(x)[0]
    placement = runner.node_placement()
    assert placement == {
        "requested": "CPUExecutionProvider",
        "session_providers": ["CPUExecutionProvider"],
        "nodes": {"CPUExecutionProvider": 3},
        "fallback": None,
    }
    assert runner._placement_dir is None  # the profile is gone with its folder
    np.testing.assert_array_equal(runner.run(x)[0], first)  # and the session runs on, unprofiled
    with pytest.raises(StudioError, match="not opened to record"):
        runner.node_placement()
    runner.close()


@pytest.mark.parametrize(
    ("requested", "session", "nodes", "sentence"),
    [
        (CUDA, [CUDA, CPU], {CUDA: 128, CPU: 12}, "12 of 140 nodes ran on the CPU"),
        (CUDA, [CUDA, CPU], {CUDA: 140}, None),
        (CUDA, [CUDA, CPU], {CPU: 9}, f"all 9 nodes ran on the CPU, none on {CUDA}"),
        (
            CUDA,
            [CPU],
            {CPU: 140},
            f"ONNX Runtime dropped {CUDA} when it opened the model: all 140 nodes ran on the CPU",
        ),
        (
            TENSORRT,
            [CUDA, CPU],
            {CUDA: 40, CPU: 2},
            f"ONNX Runtime dropped {TENSORRT} when it opened the model: 2 of 42 nodes ran on the CPU",
        ),
        (
            TENSORRT,
            [CUDA, CPU],
            {CUDA: 42},
            f"ONNX Runtime dropped {TENSORRT} when it opened the model: its nodes ran on {CUDA}",
        ),
        (TENSORRT, [TENSORRT, CUDA, CPU], {TENSORRT: 1, CUDA: 3}, None),
        (CPU, [CPU], {CPU: 5}, None),
    ],
)
def test_a_cpu_fallback_is_said_in_words(requested, session, nodes, sentence) -> None:
    assert fallback_sentence(requested, session, nodes) == sentence


@needs_cpu_only_onnxruntime
@pytest.mark.parametrize(
    ("provider", "install"),
    [
        (CUDA, "install onnxruntime-gpu"),
        (TENSORRT, "install onnxruntime-gpu in place of onnxruntime and TensorRT"),
    ],
)
def test_a_provider_this_onnxruntime_lacks_is_refused(three_nodes: Path, provider: str, install: str) -> None:
    """The real case on a CPU build: asking for CUDA must not time the CPU under CUDA's name."""
    available = ", ".join(onnxruntime.get_available_providers())
    expected = f"ONNX Runtime on this machine has no {provider} (it has {available}): {install}"
    with pytest.raises(StudioError) as refused:
        check_provider(provider, "cuda:0")
    assert str(refused.value).startswith(expected)
    with pytest.raises(StudioError, match=f"^ONNX Runtime on this machine has no {provider} "):
        OnnxRunner(three_nodes, device="cuda:0", threads=1, provider=provider)


def test_providers_are_named_short_or_in_full() -> None:
    assert provider_name("cuda", "cuda") == CUDA
    assert provider_name("TensorrtExecutionProvider", "cuda") == TENSORRT
    assert provider_name(None, "cpu") == "CPUExecutionProvider"
    assert provider_name(None, "cuda:1") == CUDA
    with pytest.raises(StudioError, match="unknown provider 'rocm': use cpu, cuda, tensorrt"):
        provider_name("rocm", "cpu")
    with pytest.raises(StudioError, match="CPUExecutionProvider does not run on cuda:0: use --device cpu"):
        check_provider("CPUExecutionProvider", "cuda:0")


def test_a_measurement_records_placement_energy_and_memory(three_nodes: Path) -> None:
    request = MeasurementRequest(
        model=ModelRef.of(collect_files(three_nodes)),
        settings=BenchmarkSettings(threads=1, batch=2, provider="cpu", **QUICK),
    )
    result = measure_here(request)
    execution = result["execution"]
    assert result["provider"] == "CPUExecutionProvider"
    assert execution["placement"]["nodes"] == {"CPUExecutionProvider": 3}
    assert execution["peak_memory"] == {"missing": "the model ran on the CPU"}
    energy = execution["energy"]
    if "missing" in energy:  # this machine: no RAPL; the figure is absent, not 0
        assert energy["missing"] and "joules_per_inference" not in energy
    else:
        assert energy["joules_per_inference"] > 0 and energy["inferences"] == energy["inferences"] // 2 * 2
    assert "mode" not in execution and "sweep" not in execution


def test_torch_options_are_refused_for_onnx_and_the_other_way_round(three_nodes: Path) -> None:
    with pytest.raises(StudioError, match="torch.compile is torch's"):
        BenchmarkSettings(torch_mode="compile").validate()
    with pytest.raises(StudioError, match="a provider is ONNX Runtime's"):
        BenchmarkSettings(runtime="torch", provider="cuda").validate()
    with pytest.raises(StudioError, match="torch.compile is torch's"):
        open_runner(collect_files(three_nodes), torch_mode="compile")


def test_against_a_reference_energy_and_memory_are_the_model_s_alone(three_nodes: Path) -> None:
    """Paired timing alternates two models: energy and memory come from runs of the model alone."""
    from studio.core.energy import meter_for

    request = MeasurementRequest(
        model=ModelRef.of(collect_files(three_nodes)),
        reference=ModelRef.of(collect_files(three_nodes)),
        settings=BenchmarkSettings(threads=1, batch=2, **QUICK),
    )
    execution = measure_here(request)["execution"]
    meter = meter_for("cpu")
    if meter.available:
        assert execution["energy"]["window"] == "runs of their own after the timing"
    else:
        assert execution["energy"] == {"missing": meter.reason}
    assert execution["peak_memory"] == {"missing": "the model ran on the CPU"}
    assert execution["placement"]["nodes"] == {"CPUExecutionProvider": 3}
