"""Runners: every format runs on both runtimes and computes the function it was made from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

from studio.api import ModelFormatError, StudioError, UntrustedFileError
from studio.core.models import ModelFormat, TensorSpec, collect_files
from studio.core.runtime import cuda_device_count, open_runner, parse_device

TORCH_FORMATS = ["torchscript", "exported_program", "arch", "pickle"]
NEEDS_SHAPE = {"torchscript", "pickle"}


def _open(corpus, name: str, runtime: str, **kwargs):
    weights = corpus.arch_weights if name == "arch" else None
    shapes = [corpus.input_shape] if name in NEEDS_SHAPE else None
    return open_runner(
        collect_files(getattr(corpus, name), weights=weights),
        runtime=runtime,
        trusted=True,
        input_shapes=shapes,
        **kwargs,
    )


# ---------------------------------------------------------------------------------------------
# Devices


@pytest.mark.parametrize(("text", "expected"), [("cpu", "cpu"), (" CPU ", "cpu")])
def test_cpu_device_names_normalise(text, expected):
    assert parse_device(text) == expected


@pytest.mark.parametrize("text", ["tpu", "gpu", "cuda:x", "cpu:1", "cuda:-1", ""])
def test_unknown_devices_are_refused(text):
    with pytest.raises(StudioError, match=f"unknown device '{text}': use cpu or cuda:N"):
        parse_device(text)


def test_missing_gpu_is_named():
    count = cuda_device_count()
    if count == 0:
        with pytest.raises(StudioError, match=r"there is no CUDA device 0 on this machine \(it has none\)"):
            parse_device("cuda")
    with pytest.raises(StudioError, match=f"there is no CUDA device {count + 3} on this machine"):
        parse_device(f"cuda:{count + 3}")


@pytest.mark.gpu
def test_cuda_names_normalise_where_there_is_a_gpu():
    if cuda_device_count() == 0:
        pytest.skip("no CUDA GPU on this machine")
    assert parse_device("CUDA") == "cuda:0"
    assert parse_device("cuda:0") == "cuda:0"


# ---------------------------------------------------------------------------------------------
# ONNX Runtime


def test_onnx_runner_runs_any_batch(corpus):
    runner = open_runner(collect_files(corpus.onnx), threads=1)
    assert (runner.runtime, runner.device) == ("onnxruntime", "cpu")
    assert runner.inputs == [TensorSpec("input", ("batch", 3, 8, 8), "float32")]
    assert runner.outputs == [TensorSpec("output", ("batch", 10), "float32")]
    x = corpus.example(5).numpy()
    (y,) = runner.run({"input": x})
    np.testing.assert_allclose(y, corpus.reference(x), rtol=1e-4, atol=1e-5)
    runner.close()


def test_onnx_runner_reads_external_data(corpus):
    with open_runner(collect_files(corpus.onnx_external)) as runner:
        x = corpus.example(2).numpy()
        np.testing.assert_allclose(runner.run({"input": x})[0], corpus.reference(x), rtol=1e-4, atol=1e-5)


def test_feeds_are_checked_by_name_and_widened_within_kind(corpus):
    with open_runner(collect_files(corpus.onnx)) as runner:
        with pytest.raises(StudioError, match="the model takes inputs input; missing input"):
            runner.run({"x": np.zeros(corpus.input_shape, np.float32)})
        x = corpus.example(1).numpy().astype(np.float64)
        np.testing.assert_allclose(
            runner.run({"input": x})[0], corpus.reference(x.astype(np.float32)), rtol=1e-4
        )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("unknown_op", "ONNX Runtime cannot load cnn.onnx|unknown_op.onnx"),
        ("damaged_data", "ONNX Runtime cannot load cnn.onnx"),
    ],
)
def test_damaged_models_fail_with_the_file_name(corpus, name, message):
    with pytest.raises(ModelFormatError, match=message) as info:
        open_runner(collect_files(getattr(corpus, name)))
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------
# PyTorch on both runtimes


@pytest.mark.parametrize("name", TORCH_FORMATS)
def test_torch_runner_matches_the_reference(corpus, name):
    with _open(corpus, name, "torch", threads=1) as runner:
        assert runner.runtime == "torch"
        assert runner.inputs == [TensorSpec("input", ("batch", 3, 8, 8), "float32")]
        assert runner.outputs == [TensorSpec("output", ("batch", 10), "float32")]
        x = corpus.example(3).numpy()
        np.testing.assert_allclose(runner.run({"input": x})[0], corpus.reference(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", TORCH_FORMATS)
def test_torch_and_onnxruntime_agree(corpus, name):
    x = corpus.example(2).numpy()
    with _open(corpus, name, "torch") as torch_runner, _open(corpus, name, "onnxruntime") as ort_runner:
        assert ort_runner.runtime == "onnxruntime" and ort_runner.inputs == torch_runner.inputs
        (a,) = torch_runner.run({"input": x})
        (b,) = ort_runner.run({"input": x})
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_converted_model_lives_only_while_the_runner_does(corpus):
    runner = _open(corpus, "arch", "onnxruntime")
    folder: Path = runner._owned_dir
    assert (folder / "model.onnx").is_file()
    runner.close()
    assert not folder.exists()


def test_static_exported_program_keeps_its_batch(corpus):
    with open_runner(collect_files(corpus.exported_static), runtime="torch") as runner:
        assert runner.inputs[0].shape == (1, 3, 8, 8)
        assert runner.outputs[0].shape == (1, 10)


def test_integer_inputs_run_on_both_runtimes(corpus):
    files = collect_files(corpus.embedding_arch, weights=corpus.embedding_weights)
    ids = np.array([[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]], dtype=np.int64)
    outs = []
    for runtime in ("torch", "onnxruntime"):
        with open_runner(files, runtime=runtime, trusted=True) as runner:
            assert runner.inputs == [TensorSpec("input", ("batch", 6), "int64")]
            outs.append(runner.run({"input": ids})[0])
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-6)
    namespace: dict = {}
    exec(compile(corpus.embedding_arch.read_text(), "<architecture>", "exec"), namespace)
    reference = namespace["build_model"]().eval()
    reference.load_state_dict(torch.load(corpus.embedding_weights, weights_only=True))
    with torch.no_grad():
        expected = reference(torch.from_numpy(ids)).numpy()
    np.testing.assert_allclose(outs[0], expected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Refusals


def test_torch_runtime_refuses_onnx(corpus):
    with pytest.raises(
        StudioError,
        match="the torch runtime runs PyTorch models; this one is ONNX: use --runtime onnxruntime",
    ):
        open_runner(collect_files(corpus.onnx), runtime="torch")


def test_unknown_runtime_is_refused(corpus):
    with pytest.raises(StudioError, match="unknown runtime 'tensorflow': use onnxruntime or torch"):
        open_runner(collect_files(corpus.onnx), runtime="tensorflow")


def test_runners_keep_the_trust_rules(corpus):
    files = collect_files(corpus.pickle)
    assert files.format is ModelFormat.TORCH_PICKLE
    for runtime in ("torch", "onnxruntime"):
        with pytest.raises(UntrustedFileError):
            open_runner(files, runtime=runtime, input_shapes=[corpus.input_shape])


def test_missing_gpu_is_refused_before_loading(corpus):
    if cuda_device_count() > 0:
        pytest.skip("this machine has a GPU")
    with pytest.raises(StudioError, match="there is no CUDA device 0"):
        open_runner(collect_files(corpus.onnx), device="cuda:0")


@pytest.mark.gpu
@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
def test_runs_on_a_gpu(corpus, runtime):
    if cuda_device_count() == 0:
        pytest.skip("no CUDA GPU on this machine")
    if runtime == "onnxruntime" and "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime is built without CUDA")
    if runtime == "torch" and not torch.cuda.is_available():
        pytest.skip("this torch is built without CUDA")
    name = "onnx" if runtime == "onnxruntime" else "arch"
    with _open(corpus, name, runtime, device="cuda:0") as runner:
        assert runner.device == "cuda:0"
        x = corpus.example(2).numpy()
        np.testing.assert_allclose(runner.run({"input": x})[0], corpus.reference(x), rtol=1e-3, atol=1e-4)
