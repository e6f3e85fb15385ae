"""Exports: standalone ONNX files checked against their source, and TensorRT engines or, without
TensorRT, the ONNX file and trtexec command a TensorRT machine needs."""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

from studio.api import StudioError, TensorSpec, UntrustedFileError
from studio.export import (
    export_onnx_version,
    export_tensorrt,
    shape_ranges,
    trtexec_command,
    trtexec_text,
    unavailable_reason,
)
from studio.export.tensorrt import benchmark_engine, build_engine
from studio.project import Project


@pytest.fixture
def project(project_dir: Path):
    with Project.open(project_dir) as project:
        yield project


def _input_dims(path: Path) -> list:
    dims = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    return [d.dim_param or d.dim_value for d in dims]


def _inputs(batch: int) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((batch, 1, 28, 28)).astype(np.float32)


def _run(path: Path, batch: int) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: _inputs(batch)})[0]


def _run_sample(path: Path, x: np.ndarray, i: int) -> np.ndarray:
    """Sample ``i`` of ``x`` alone, for a model that takes batches of one."""
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x[i : i + 1]})[0]


# -- ONNX ------------------------------------------------------------------------------------------


def test_an_onnx_version_is_copied_checked_and_compared_on_the_project_dataset(project: Project) -> None:
    version = project.store.find_version("baseline")
    result = export_onnx_version(project, version)

    assert result.path == project.root / "exports" / "baseline.onnx"
    assert result.path.read_bytes() == project.version_path(version).read_bytes()
    assert result.files == (result.path,) and result.size_bytes == version.size_bytes
    assert result.checker_ok and result.max_abs_diff == 0.0
    assert result.compared_on == "32 validation samples of dataset 'digits'"
    assert (result.opset, result.source_runtime, result.dynamic_batch) == (17, "onnxruntime", True)
    assert [p.name for p in result.path.parent.iterdir()] == ["baseline.onnx"]  # no staging left


def test_weights_past_the_limit_go_to_one_side_file(project: Project, tmp_path: Path) -> None:
    version = project.store.find_version("baseline")
    out = tmp_path / "out" / "big.onnx"
    result = export_onnx_version(project, version, out=out, opset=18, external_data_above=100_000)

    assert result.files == (out, tmp_path / "out" / "big.onnx.data")
    assert out.stat().st_size < 20_000 < result.files[1].stat().st_size
    assert result.opset == 18 and result.checker_ok and result.max_abs_diff < 1e-5
    np.testing.assert_allclose(_run(out, 2), _run(project.version_path(version), 2), rtol=1e-5, atol=1e-6)


def test_a_fixed_batch_is_freed_on_request(project: Project, tmp_path: Path, author_trust) -> None:
    static = export_onnx_version(project, project.store.find_version("architecture"), out=tmp_path / "s.onnx")
    assert _input_dims(static.path) == [1, 1, 28, 28] and not static.dynamic_batch
    imported = project.import_model(static.path, name="static")

    freed = export_onnx_version(project, imported, out=tmp_path / "freed.onnx", dynamic_batch=True)

    assert _input_dims(freed.path) == ["batch", 1, 28, 28] and freed.dynamic_batch
    assert freed.max_abs_diff < 1e-5  # run at batch 32 against the batch-1 source, one sample at a time
    batched = _run(freed.path, 3)
    one_by_one = np.concatenate([_run_sample(static.path, _inputs(3), i) for i in range(3)])
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-5, atol=1e-6)


def test_a_torch_version_is_exported_with_the_torchscript_exporter_and_compared_in_torch(
    project: Project, author_trust
) -> None:
    version = project.store.find_version("architecture")
    result = export_onnx_version(project, version, dynamic_batch=True)

    assert result.path.name == "architecture.onnx"
    assert (result.source_runtime, result.opset, result.checker_ok) == ("torch", 17, True)
    assert 0 < result.max_abs_diff < 1e-4
    assert _input_dims(result.path) == ["batch", 1, 28, 28]
    producer = onnx.load(str(result.path), load_external_data=False).producer_name
    assert producer == "pytorch"


def _relu_model(path: Path, shape: list) -> Path:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))
    return path


def test_without_a_project_dataset_the_comparison_uses_seeded_random_inputs(tmp_path: Path) -> None:
    with Project.create(tmp_path / "fresh") as fresh:
        fixed = fresh.import_model(_relu_model(tmp_path / "fixed.onnx", ["batch", 3, 5]))
        result = export_onnx_version(fresh, fixed)
        assert result.compared_on == "32 seeded random samples" and result.max_abs_diff == 0.0
        open_size = fresh.import_model(_relu_model(tmp_path / "open.onnx", ["batch", "tokens"]))
        result = export_onnx_version(fresh, open_size)
        assert result.max_abs_diff is None and result.checker_ok
        assert result.compared_on.startswith("not compared: the model's input 'x' has a dimension 'tokens'")


def test_an_untrusted_torch_version_is_refused_and_nothing_is_written(project: Project) -> None:
    """This test's data folder is a machine where nobody trusted the architecture file."""
    with pytest.raises(UntrustedFileError, match="digits_cnn.py is Python code"):
        export_onnx_version(project, project.store.find_version("architecture"))
    assert not (project.root / "exports").exists()


def test_user_text_in_a_version_name_becomes_a_safe_file_name(project: Project, made_project) -> None:
    version = project.store.find_version("v2")
    assert version.name == made_project.child_name
    result = export_onnx_version(project, version)
    assert result.path.parent == project.root / "exports"
    assert result.path.name == "int8_fast_script_alert_1_script.onnx"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"opset": 3}, "opset 3 is out of range"),
        ({"opset": 99}, "opset 99 is out of range"),
        ({"out": "folder"}, "is a folder; give the file to write"),
        ({"out": "model store"}, "is inside the project's model store"),
    ],
)
def test_bad_requests_are_refused_before_anything_is_written(
    project: Project, tmp_path: Path, kwargs: dict, message: str
) -> None:
    version = project.store.find_version("baseline")
    if kwargs.get("out") == "folder":
        (tmp_path / "folder").mkdir()
        kwargs = {"out": tmp_path / "folder"}
    elif kwargs.get("out") == "model store":
        kwargs = {"out": project.version_path(version)}
    before = project.version_path(version).read_bytes()
    with pytest.raises(StudioError, match=message):
        export_onnx_version(project, version, **kwargs)
    assert not (project.root / "exports").exists()
    assert project.version_path(version).read_bytes() == before


# -- TensorRT --------------------------------------------------------------------------------------


def test_without_tensorrt_the_onnx_file_and_trtexec_command_are_written(project: Project) -> None:
    if unavailable_reason() is None:
        pytest.skip("TensorRT and a GPU are present: the engine test covers this machine")
    result = export_tensorrt(project, project.store.find_version("baseline"), max_batch=8)
    exports = project.root / "exports"

    assert result.engine is None and result.benchmark is None
    assert result.reason == unavailable_reason()
    assert result.onnx.path == exports / "baseline.onnx" and result.onnx.checker_ok
    text = (exports / "baseline.trtexec.txt").read_text()
    build = next(line for line in text.splitlines() if line.startswith("trtexec --onnx"))
    assert shlex.split(build) == [
        "trtexec",
        "--onnx=baseline.onnx",
        "--saveEngine=baseline.engine",
        "--timingCacheFile=tensorrt.timing.cache",
        "--stronglyTyped",
        "--minShapes=input:1x1x28x28",
        "--optShapes=input:1x1x28x28",
        "--maxShapes=input:8x1x28x28",
    ]
    assert "--fp16" not in build and "--int8" not in build
    assert "trtexec --loadEngine=baseline.engine --shapes=input:1x1x28x28" in text
    assert sorted(p.name for p in exports.iterdir()) == ["baseline.onnx", "baseline.trtexec.txt"]


def test_a_tensorrt_export_raises_an_old_opset_to_17(project: Project, tmp_path: Path, author_trust) -> None:
    architecture = project.store.find_version("architecture")
    old = export_onnx_version(project, architecture, out=tmp_path / "opset13.onnx", opset=13)
    assert old.opset == 13
    version = project.import_model(old.path, name="old opset")

    result = export_tensorrt(project, version, out=tmp_path / "engines" / "old.plan")

    assert result.onnx.path == tmp_path / "engines" / "old.onnx"
    assert result.onnx.opset == 17 and result.onnx.max_abs_diff < 1e-5
    assert result.command[1:3] == ["--onnx=old.onnx", "--saveEngine=old.plan"]
    assert result.shapes[0].min == result.shapes[0].max == (1, 1, 28, 28)  # static: no profile needed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"opset": 13}, "TensorRT needs ONNX opset 17 or newer, not 13"),
        ({"out": "engine.onnx"}, "--out names the engine file"),
        ({"min_batch": 4, "opt_batch": 2}, "batch sizes must satisfy"),
    ],
)
def test_tensorrt_requests_that_cannot_work_are_refused_first(
    project: Project, tmp_path: Path, kwargs: dict, message: str
) -> None:
    if "out" in kwargs:
        kwargs = {"out": tmp_path / kwargs["out"]}
    with pytest.raises(StudioError, match=message):
        export_tensorrt(project, project.store.find_version("baseline"), **kwargs)
    assert not (project.root / "exports").exists() and not list(tmp_path.glob("engine*"))


def test_trtexec_commands_for_static_dynamic_and_awkward_inputs() -> None:
    static = shape_ranges([TensorSpec("x", (4, 3, 8, 8), "float32")])
    assert trtexec_command("m.onnx", "m.engine", static, "t.cache") == [
        "trtexec",
        "--onnx=m.onnx",
        "--saveEngine=m.engine",
        "--timingCacheFile=t.cache",
        "--stronglyTyped",
    ]
    ranges = shape_ranges(
        [TensorSpec("ids:0", ("batch", 16), "int64"), TensorSpec("mask", ("n", 16), "int64")],
        min_batch=1,
        opt_batch=4,
        max_batch=32,
    )
    command = trtexec_command("/some where/m.onnx", "m.engine", ranges, "t.cache")
    assert command[-3:] == [
        "--minShapes='ids:0':1x16,mask:1x16",
        "--optShapes='ids:0':4x16,mask:4x16",
        "--maxShapes='ids:0':32x16,mask:32x16",
    ]
    text = trtexec_text(command, ranges)
    assert shlex.split(text.splitlines()[4])[1] == "--onnx=/some where/m.onnx"
    assert "--shapes='ids:0':4x16,mask:4x16" in shlex.split(text.splitlines()[-1])[-1]


def test_open_dimensions_other_than_the_batch_are_refused() -> None:
    with pytest.raises(StudioError, match="input 'tokens' has a dimension 'sequence' of open size"):
        shape_ranges([TensorSpec("tokens", ("batch", "sequence"), "int64")])


@pytest.mark.gpu
@pytest.mark.skipif(
    unavailable_reason() is not None, reason=f"no TensorRT engine here: {unavailable_reason()}"
)
def test_an_engine_is_built_timed_and_its_timing_cache_reused(project: Project) -> None:
    result = export_tensorrt(project, project.store.find_version("baseline"), max_batch=8, runs=50)
    assert result.engine is not None and result.engine.stat().st_size > 0
    assert result.timing_cache.is_file() and result.benchmark["p50_ms"] > 0
    cache_size = result.timing_cache.stat().st_size
    again = build_engine(result.onnx.path, result.engine, result.shapes, result.timing_cache)
    assert again == result.engine and result.timing_cache.stat().st_size >= cache_size
    assert benchmark_engine(result.engine, result.shapes, runs=20)["runs"] == 20


# -- the command line ------------------------------------------------------------------------------


def test_export_from_the_command_line(studio_cli, project_dir: Path, tmp_path: Path) -> None:
    result = studio_cli("export", "v1", "--format", "onnx", "--project", project_dir, "--json")
    assert result.returncode == 0, result.stderr
    payload = result.json()
    assert payload["checker_ok"] and payload["max_abs_diff"] == 0.0 and payload["opset"] == 17
    with Project.open(project_dir) as project:
        stored = project.version_path(project.store.find_version("v1")).read_bytes()
    assert Path(payload["path"]) == project_dir / "exports" / "baseline.onnx"
    assert Path(payload["path"]).read_bytes() == stored

    refused = studio_cli("export", "v1", "--format", "tensorrt", "--project", project_dir, "--opset", "12")
    assert refused.returncode == 2
    assert refused.stderr.strip() == "studio: error: TensorRT needs ONNX opset 17 or newer, not 12"
