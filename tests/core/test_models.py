"""Model files: recognised by content, gathered with what they need, loaded without trusting them."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from studio.api import ModelFormatError, UntrustedFileError
from studio.core.files import sha256_file
from studio.core.models import (
    ModelFiles,
    ModelFormat,
    TensorSpec,
    collect_files,
    count_parameters,
    detect_format,
    export_onnx,
    load_onnx,
    load_torch_module,
    onnx_io_specs,
    torch_example_inputs,
    torch_input_specs,
)

GOOD_FILES = [
    ("onnx", ModelFormat.ONNX),
    ("onnx_external", ModelFormat.ONNX),
    ("torchscript", ModelFormat.TORCHSCRIPT),
    ("exported_program", ModelFormat.EXPORTED_PROGRAM),
    ("exported_static", ModelFormat.EXPORTED_PROGRAM),
    ("arch", ModelFormat.TORCH_ARCHITECTURE),
    ("pickle", ModelFormat.TORCH_PICKLE),
]

# Each bad file and the one sentence (fragment) it must give.
BAD_FILES = [
    ("empty", "empty.onnx is empty"),
    ("truncated", "truncated.onnx is a damaged or truncated ONNX file"),
    ("random", "random.onnx is not an ONNX model"),
    ("zip_named_onnx", "really_a_zip.onnx is not an ONNX model: it is a zip archive (a PyTorch file?)"),
    ("random_bin", "noise.bin is not a model the studio reads"),
    ("text", "notes.txt is not a model the studio reads"),
    ("plain_zip", "archive.zip is not a model the studio reads"),
    ("broken_python", "broken.py is not valid Python (line 1)"),
    ("folder", "is a folder"),
    (
        "arch_weights",
        "cnn_weights.pt holds only weights; import it with its architecture file: studio import",
    ),
    ("arch_safetensors", "cnn_weights.safetensors holds only weights"),
    ("arch_checkpoint", "checkpoint.pt holds only weights"),
]

BAD_COLLECTIONS = [
    ("escape", "cnn.onnx points to external data outside its folder (../secret.bin)"),
    ("absolute", "cnn.onnx points to external data at an absolute path"),
    ("missing_data", "cnn.onnx needs its external data file 'gone.bin', which is missing beside it"),
    ("no_build_model", "no_build.py has no build_model() function"),
]


# ---------------------------------------------------------------------------------------------
# Recognising files


@pytest.mark.parametrize(("name", "expected"), GOOD_FILES)
def test_good_files_are_recognised_by_content(corpus, name, expected):
    assert detect_format(getattr(corpus, name)) is expected


@pytest.mark.parametrize(("name", "message"), BAD_FILES)
def test_bad_files_give_one_clear_sentence(corpus, name, message):
    with pytest.raises(ModelFormatError) as info:
        detect_format(getattr(corpus, name))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("name", "message"), BAD_COLLECTIONS)
def test_unsafe_or_incomplete_models_are_refused_when_collected(corpus, name, message):
    with pytest.raises(ModelFormatError) as info:
        collect_files(getattr(corpus, name))
    assert message in str(info.value)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(ModelFormatError, match="nothing.onnx does not exist"):
        detect_format(tmp_path / "nothing.onnx")


def test_extension_does_not_decide_the_format(corpus, tmp_path):
    renamed = tmp_path / "model.bin"
    shutil.copy(corpus.onnx, renamed)
    assert detect_format(renamed) is ModelFormat.ONNX
    script = tmp_path / "model.pt2"
    shutil.copy(corpus.torchscript, script)
    assert detect_format(script) is ModelFormat.TORCHSCRIPT


def test_python_named_onnx_is_called_out(corpus, tmp_path):
    liar = tmp_path / "model.onnx"
    shutil.copy(corpus.arch, liar)
    with pytest.raises(ModelFormatError, match="model.onnx is not an ONNX model: it is Python source code"):
        detect_format(liar)


def test_onnx_cut_between_fields_is_caught(corpus, tmp_path):
    """A file cut right after the graph parses as protobuf; the missing operator set gives it away."""
    model = onnx.load(str(corpus.onnx))
    del model.opset_import[:]
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(model.SerializeToString())
    with pytest.raises(ModelFormatError, match="cut.onnx is a damaged or truncated ONNX file: it names no"):
        detect_format(cut)


def test_legacy_torch_save_is_recognised(tmp_path, corpus):
    whole = tmp_path / "legacy.pt"
    torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2)), whole, _use_new_zipfile_serialization=False)
    assert detect_format(whole) is ModelFormat.TORCH_PICKLE
    weights = tmp_path / "legacy_weights.pt"
    torch.save(corpus.module.state_dict(), weights, _use_new_zipfile_serialization=False)
    with pytest.raises(ModelFormatError, match="holds only weights"):
        detect_format(weights)


# ---------------------------------------------------------------------------------------------
# Collecting the files of a model


def test_external_data_is_collected_without_loading_it(corpus):
    files = collect_files(corpus.onnx_external)
    assert files.format is ModelFormat.ONNX
    assert files.extra == (Path("weights.bin"),)
    assert (
        files.size_bytes()
        == corpus.onnx_external.stat().st_size + (corpus.root / "external/weights.bin").stat().st_size
    )
    assert files.sources() == [
        (corpus.onnx_external.absolute(), "cnn.onnx"),
        ((corpus.root / "external/weights.bin").absolute(), "weights.bin"),
    ]


def test_link_pointing_out_of_the_folder_is_refused(corpus, tmp_path):
    folder = tmp_path / "linked"
    folder.mkdir()
    shutil.copy(corpus.onnx_external, folder / "cnn.onnx")
    (folder / "weights.bin").symlink_to(corpus.root / "external/weights.bin")
    with pytest.raises(ModelFormatError, match=r"outside its folder \(weights.bin, a link\)"):
        collect_files(folder / "cnn.onnx")


def test_architecture_weights_beside_it_are_relative(corpus):
    files = collect_files(corpus.arch, weights=corpus.arch_weights)
    assert files.weights == Path("cnn_weights.pt")
    assert {name for _, name in files.sources()} == {"cnn_arch.py", "cnn_weights.pt"}
    assert files.size_bytes() == corpus.arch.stat().st_size + corpus.arch_weights.stat().st_size


def test_architecture_weights_elsewhere_are_absolute_and_copy_beside_it(corpus, tmp_path):
    elsewhere = tmp_path / "ckpt" / "final.safetensors"
    elsewhere.parent.mkdir()
    shutil.copy(corpus.arch_safetensors, elsewhere)
    files = collect_files(corpus.arch, weights=elsewhere)
    assert files.weights == elsewhere.absolute()
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    for source, name in files.sources():
        shutil.copy(source, artifact / name)
    moved = files.moved_to(artifact)
    assert moved.weights == Path("final.safetensors")
    assert moved == collect_files(artifact / "cnn_arch.py", weights=artifact / "final.safetensors")


def test_architecture_needs_weights(corpus):
    with pytest.raises(ModelFormatError, match="cnn_arch.py is an architecture file: pass its weights"):
        collect_files(corpus.arch)


def test_weights_must_be_weights(corpus):
    with pytest.raises(ModelFormatError, match="cnn.onnx is not a weights file"):
        collect_files(corpus.arch, weights=corpus.onnx)


def test_weights_only_go_with_an_architecture(corpus):
    with pytest.raises(ModelFormatError, match="--weights is only for an architecture .py file"):
        collect_files(corpus.onnx, weights=corpus.arch_weights)


# ---------------------------------------------------------------------------------------------
# ONNX


def test_onnx_io_specs_keep_symbolic_batch(corpus):
    model = load_onnx(collect_files(corpus.onnx))
    inputs, outputs = onnx_io_specs(model)
    assert inputs == [TensorSpec("input", ("batch", 3, 8, 8), "float32")]
    assert outputs == [TensorSpec("output", ("batch", 10), "float32")]


def test_load_onnx_reads_external_data(corpus):
    model = load_onnx(collect_files(corpus.onnx_external))
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    np.testing.assert_array_equal(weights["conv.weight"], corpus.module.conv.weight.detach().numpy())


def test_onnx_parameters_match_the_torch_module(corpus):
    expected = sum(p.numel() for p in corpus.module.parameters())
    assert count_parameters(corpus.module) == expected == 8 * 27 + 8 + 128 * 10 + 10
    assert count_parameters(load_onnx(collect_files(corpus.onnx))) == expected


# ---------------------------------------------------------------------------------------------
# PyTorch modules


def _files(corpus, name: str) -> ModelFiles:
    weights = {"arch": corpus.arch_weights, "embedding_arch": corpus.embedding_weights}.get(name)
    return collect_files(getattr(corpus, name), weights=weights)


@pytest.mark.parametrize("name", ["torchscript", "exported_program", "exported_static", "arch", "pickle"])
def test_torch_formats_load_and_compute_the_same_function(corpus, name):
    module = load_torch_module(_files(corpus, name), trusted=True)
    assert not module.training or name.startswith("exported")  # a program has no train mode to leave
    x = corpus.example()
    with torch.no_grad():
        np.testing.assert_allclose(module(x).numpy(), corpus.reference(x.numpy()), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("weights", ["arch_safetensors", "arch_checkpoint"])
def test_architecture_loads_safetensors_and_checkpoints(corpus, weights):
    module = load_torch_module(collect_files(corpus.arch, weights=getattr(corpus, weights)), trusted=True)
    x = corpus.example()
    with torch.no_grad():
        np.testing.assert_allclose(module(x).numpy(), corpus.reference(x.numpy()), rtol=1e-5, atol=1e-6)


def test_weights_that_do_not_fit_are_explained(corpus):
    files = collect_files(corpus.arch, weights=corpus.wrong_weights)
    with pytest.raises(ModelFormatError) as info:
        load_torch_module(files, trusted=True)
    message = str(info.value)
    assert message.startswith("wrong_weights.pt does not fit cnn_arch.py:")
    assert "1 unexpected (extra.bias)" in message
    assert "fc.weight is (5, 128) but the model wants (10, 128)" in message


@pytest.mark.parametrize(
    ("name", "what"), [("pickle", "is a pickled PyTorch module"), ("arch", "is Python code")]
)
def test_code_bearing_files_need_trust(corpus, name, what):
    files = _files(corpus, name)
    with pytest.raises(UntrustedFileError) as info:
        load_torch_module(files, trusted=False)
    digest = sha256_file(files.main)
    assert what in str(info.value)
    assert f"Pass --trust if you trust it (sha256 {digest[:12]}" in str(info.value)


class _WritesMarker(torch.nn.Module):
    """A module whose unpickling runs code: exactly what an untrusted file may contain."""

    def __init__(self, marker: Path) -> None:
        super().__init__()
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('code ran')",))


def test_untrusted_pickle_runs_no_code(tmp_path):
    marker = tmp_path / "marker.txt"
    evil = tmp_path / "evil.pt"
    torch.save(_WritesMarker(marker), evil)
    files = collect_files(evil)
    assert files.format is ModelFormat.TORCH_PICKLE
    with pytest.raises(UntrustedFileError):
        load_torch_module(files, trusted=False)
    assert not marker.exists()
    # The same file, trusted, does run its code: the refusal above is what kept it from running.
    with pytest.raises(ModelFormatError, match="not a PyTorch module"):
        load_torch_module(files, trusted=True)
    assert marker.read_text() == "code ran"


def _program_with_pickled_weight(source: Path, target: Path, payload: bytes) -> None:
    """A .pt2 whose first weight is a pickle, as torch.export.save stores tensors it cannot lay out flat."""
    with zipfile.ZipFile(source) as src:
        members = {info.filename: (info, src.read(info.filename)) for info in src.infolist()}
    config_name = next(n for n in members if n.endswith("data/weights/model_weights_config.json"))
    config = json.loads(members[config_name][1])
    first = next(iter(config["config"].values()))
    first["use_pickle"] = True
    weight_name = config_name.rsplit("/", 1)[0] + "/" + first["path_name"]
    members[config_name] = (members[config_name][0], json.dumps(config).encode())
    members[weight_name] = (members[weight_name][0], payload)
    with zipfile.ZipFile(target, "w") as dst:
        for info, data in members.values():
            dst.writestr(info, data)


def test_program_with_pickled_objects_needs_trust(corpus, tmp_path):
    """torch.export.load unpickles such payloads without the safe loader: they must not load untrusted."""
    marker = tmp_path / "marker.txt"
    buffer = io.BytesIO()
    torch.save(_WritesMarker(marker), buffer)
    program = tmp_path / "tampered.pt2"
    _program_with_pickled_weight(corpus.exported_program, program, buffer.getvalue())
    files = collect_files(program)
    assert files.format is ModelFormat.EXPORTED_PROGRAM
    with pytest.raises(UntrustedFileError, match="tampered.pt2 holds native code or pickled Python objects"):
        load_torch_module(files, trusted=False)
    assert not marker.exists()
    with contextlib.suppress(Exception):
        load_torch_module(files, trusted=True)
    assert marker.read_text() == "code ran"  # the refusal above is what kept it from running


def test_untrusted_architecture_runs_no_code(corpus, tmp_path):
    marker = tmp_path / "imported.txt"
    arch = tmp_path / "arch.py"
    arch.write_text(f"open({str(marker)!r}, 'w').write('x')\n" + corpus.arch.read_text())
    files = collect_files(arch, weights=corpus.arch_weights)
    with pytest.raises(UntrustedFileError):
        load_torch_module(files, trusted=False)
    assert not marker.exists()
    # reading INPUT_SHAPE does not import the file either
    assert torch_input_specs(files, torch.nn.Identity()) == [
        TensorSpec("input", ("batch", 3, 8, 8), "float32")
    ]
    assert not marker.exists()


def test_failing_build_model_is_explained(corpus, tmp_path):
    arch = tmp_path / "arch.py"
    arch.write_text("def build_model():\n    raise RuntimeError('no GPU here')\n")
    with pytest.raises(ModelFormatError, match=r"build_model\(\) in arch.py failed: no GPU here"):
        load_torch_module(collect_files(arch, weights=corpus.arch_weights), trusted=True)


# ---------------------------------------------------------------------------------------------
# Inputs of PyTorch models


def test_architecture_declares_its_input_shape(corpus):
    files = _files(corpus, "arch")
    module = load_torch_module(files, trusted=True)
    assert torch_input_specs(files, module) == [TensorSpec("input", ("batch", 3, 8, 8), "float32")]


def test_architecture_example_inputs_keep_their_dtype(corpus):
    files = _files(corpus, "embedding_arch")
    module = load_torch_module(files, trusted=True)
    specs = torch_input_specs(files, module)
    assert specs == [TensorSpec("input", ("batch", 6), "int64")]
    (ids,) = torch_example_inputs(specs, batch=3)
    assert ids.dtype == torch.int64 and tuple(ids.shape) == (3, 6)


def test_exported_program_batch_is_free_only_when_exported_so(corpus):
    for name, first in (("exported_program", "batch"), ("exported_static", 1)):
        files = _files(corpus, name)
        specs = torch_input_specs(files, load_torch_module(files, trusted=False))
        assert specs == [TensorSpec("input", (first, 3, 8, 8), "float32")]


def test_torchscript_needs_an_input_shape(corpus):
    files = _files(corpus, "torchscript")
    module = load_torch_module(files, trusted=True)
    with pytest.raises(
        ModelFormatError, match="cnn.ts.pt does not say what input it takes; pass --input-shape"
    ):
        torch_input_specs(files, module)
    specs = torch_input_specs(files, module, [corpus.input_shape, (1, 4)])
    assert [s.name for s in specs] == ["input_0", "input_1"]
    assert specs[1] == TensorSpec("input_1", ("batch", 4), "float32")


# ---------------------------------------------------------------------------------------------
# Export


def _run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def test_export_is_one_file_with_a_dynamic_batch(corpus, tmp_path):
    out = export_onnx(corpus.module, (corpus.example(),), tmp_path / "m.onnx", input_names=["input"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
    inputs, outputs = onnx_io_specs(onnx.load(str(out)))
    assert inputs[0].shape[0] == "batch" and outputs[0].name == "output"
    x = corpus.example(3).numpy()
    np.testing.assert_allclose(_run_onnx(out, x), corpus.reference(x), rtol=1e-4, atol=1e-5)


def test_export_falls_back_to_torch_export(corpus, tmp_path):
    """A program from torch.export cannot be traced by the TorchScript exporter; the fallback takes it."""
    files = _files(corpus, "exported_program")
    module = load_torch_module(files, trusted=False)
    specs = torch_input_specs(files, module)
    out = export_onnx(
        module, torch_example_inputs(specs, batch=2), tmp_path / "ep.onnx", input_names=["input"]
    )
    model = onnx.load(str(out))
    assert count_parameters(model) == count_parameters(corpus.module)
    x = corpus.example(4).numpy()
    np.testing.assert_allclose(_run_onnx(out, x), corpus.reference(x), rtol=1e-4, atol=1e-5)


def test_export_failure_is_one_sentence(tmp_path):
    class Broken(torch.nn.Module):
        def forward(self, x):
            return x @ torch.ones(5, 5)

    with pytest.raises(ModelFormatError, match="the model fails on an input of the declared shape"):
        export_onnx(Broken(), (torch.ones(1, 3),), tmp_path / "b.onnx", input_names=["input"])
    assert list(tmp_path.iterdir()) == []
