"""The `studio` command line, run as a user runs it: a subprocess on real files and a real project."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from studio.core.resources import resource

DEMO_ONNX = resource("demo", "digits_cnn.onnx")
DEMO_ARCH = resource("demo", "digits_cnn.py")
DEMO_WEIGHTS = resource("demo", "digits_cnn.safetensors")
FAST = ("--min-runs", "5", "--min-seconds", "0.05", "--threads", "1")


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes; the database as its table rows, which WAL
    files would otherwise hide."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.startswith("studio.sqlite"):
            files[str(path.relative_to(folder))] = path.read_bytes()
    db = folder / "studio.sqlite"
    if db.exists():
        with sqlite3.connect(db) as conn:
            tables = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
            for table in sorted(tables):
                files[f"table:{table}"] = repr(conn.execute(f"select * from {table}").fetchall()).encode()
    return files


@pytest.fixture(scope="module")
def demo_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project holding the demo ONNX model as v1, made once through the real command."""
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("proj") / "p"
    subprocess.run(
        [sys.executable, "-m", "studio", "import", str(DEMO_ONNX), "--project", str(root), "--name", "base"],
        check=True,
        capture_output=True,
    )
    return root


def copy_project(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "project"
    shutil.copytree(src, dst)
    return dst


# -- what a user does --------------------------------------------------------------------------


def test_demo_gives_the_project_and_a_measured_baseline_as_json_then_as_a_table(
    studio_cli, tmp_path: Path
) -> None:
    result = studio_cli("demo", "--headless", "--project", tmp_path / "demo", "--json")
    assert result.returncode == 0, result.stderr
    out = result.json()
    assert Path(out["project"]) == (tmp_path / "demo").resolve()
    baseline = out["baseline"]
    assert isinstance(baseline["id"], int)
    m = baseline["measurements"][0]
    assert m["accuracy"]["top1"] >= 0.98
    assert m["latency_ms"]["p50"] > 0 and m["batch"] == 1 and m["threads"] == 1

    # run again, for people: the same project and baseline, one more measurement, as a table
    again = studio_cli("demo", "--headless", "--project", tmp_path / "demo")
    assert again.returncode == 0, again.stderr
    lines = again.stdout.splitlines()
    header = next(line for line in lines if line.startswith("version"))
    assert header.split() == [
        "version",
        "name",
        "technique",
        "format",
        "params",
        "size",
        "top-1",
        "vs",
        "parent",
        "p50",
        "ms",
        "p99",
        "ms",
        "per",
        "s",
        "energy/inf",
    ]
    row = next(line.split() for line in lines if line.startswith("v1 "))
    assert row[:4] == ["v1", "baseline", "import", "torch_architecture"]
    stored = studio_cli("versions", "--project", tmp_path / "demo", "--json").json()["versions"]
    assert [v["id"] for v in stored] == [baseline["id"]]
    top1 = stored[0]["latest_measurement"]["accuracy"]["top1"]
    assert row[7] == f"{top1:.2%}" and top1 >= 0.98
    with sqlite3.connect(tmp_path / "demo" / "studio.sqlite") as conn:
        assert conn.execute("select count(*) from measurements").fetchone()[0] == 2
        assert conn.execute("select count(*) from model_versions").fetchone()[0] == 1


def test_import_prints_the_version_and_copies_the_files(studio_cli, tmp_path: Path) -> None:
    result = studio_cli("import", DEMO_ONNX, "--project", tmp_path / "p", "--name", "base", "--json")
    assert result.returncode == 0, result.stderr
    version = result.json()
    assert version["id"] == 1 and version["name"] == "base" and version["format"] == "onnx"
    stored = tmp_path / "p" / "artifacts" / version["artifact"] / version["main_file"]
    assert stored.read_bytes() == DEMO_ONNX.read_bytes()
    # the same file again is the same version, not a second copy
    again = studio_cli("import", DEMO_ONNX, "--project", tmp_path / "p", "--json").json()
    assert again["id"] == 1


def test_import_architecture_file_needs_trust_and_remembers_it(studio_cli, tmp_path: Path) -> None:
    project = tmp_path / "p"
    refused = studio_cli("import", DEMO_ARCH, "--weights", DEMO_WEIGHTS, "--project", project)
    assert refused.returncode == 2
    assert "--trust" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert not project.exists()
    ok = studio_cli("import", DEMO_ARCH, "--weights", DEMO_WEIGHTS, "--project", project, "--trust", "--json")
    assert ok.returncode == 0, ok.stderr
    assert ok.json()["format"] == "torch_architecture" and ok.json()["trusted"] is True
    # the decision is remembered for this file's hash: the stored version measures without --trust
    bench = studio_cli("bench", "1", "--project", project, "--runtime", "torch", *FAST, "--json")
    assert bench.returncode == 0, bench.stderr
    assert bench.json()["runtime"] == "torch"


def test_info_of_a_file_and_of_a_version(studio_cli, demo_project: Path) -> None:
    from_file = studio_cli("info", DEMO_ONNX, "--json")
    assert from_file.returncode == 0, from_file.stderr
    info = from_file.json()
    assert info["inputs"] == [{"name": "input", "shape": ["batch", 1, 28, 28], "dtype": "float32"}]
    assert info["outputs"][0]["name"] == "logits"
    assert info["op_histogram"]["Conv"] == 4
    assert (info["macs"], info["params"]) == (101_381_888, 241_546)
    assert sum(layer["macs"] for layer in info["layers"]) == info["macs"]
    from_version = studio_cli("info", "base", "--project", demo_project, "--json").json()
    assert from_version["macs"] == info["macs"]
    text = studio_cli("info", "v1", "--project", demo_project, "--layers", "3")
    assert "Conv" in text.stdout and "share" in text.stdout


def test_bench_json_has_every_figure_and_is_stored(studio_cli, demo_project: Path, tmp_path: Path) -> None:
    project = copy_project(demo_project, tmp_path)
    result = studio_cli(
        "bench",
        "v1",
        "--project",
        project,
        "--data",
        "digits",
        "--reference",
        "1",
        "--batch",
        "2",
        *FAST,
        "--json",
    )
    assert result.returncode == 0, result.stderr
    m = result.json()
    assert set(m["latency_ms"]) >= {"p50", "p90", "p99", "mean", "std"}
    assert m["latency_ms"]["p50"] <= m["latency_ms"]["p90"] <= m["latency_ms"]["p99"]
    assert m["accuracy"]["top1"] >= 0.98 and "top5" in m["accuracy"]
    assert m["fidelity"]["cosine_min"] > 0.9999 and m["fidelity"]["argmax_agreement"] == 1.0
    assert m["throughput_per_s"] == pytest.approx(2 * 1000 / m["latency_ms"]["mean"], rel=1e-6)
    assert m["size_bytes"] == DEMO_ONNX.stat().st_size
    assert m["device"] == "cpu" and m["runtime"] == "onnxruntime" and m["batch"] == 2 and m["threads"] == 1
    assert {"python", "onnxruntime", "numpy"} <= set(m["environment"])
    with sqlite3.connect(project / "studio.sqlite") as conn:
        row = conn.execute(
            "select batch, threads, latency_p50_ms from measurements where id=?", (m["id"],)
        ).fetchone()
    assert row == (2, 1, pytest.approx(m["latency_ms"]["p50"]))


def test_bench_of_a_file_imports_it(studio_cli, tmp_path: Path) -> None:
    result = studio_cli("bench", DEMO_ONNX, "--project", tmp_path / "p", *FAST, "--json")
    assert result.returncode == 0, result.stderr
    assert result.json()["accuracy"] is None  # no dataset: latency on seeded random inputs
    listed = studio_cli("versions", "--project", tmp_path / "p", "--json").json()
    assert [v["name"] for v in listed["versions"]] == ["digits_cnn"]
    assert listed["versions"][0]["latest_measurement"]["id"] == result.json()["id"]


def test_devices(studio_cli) -> None:
    result = studio_cli("devices", "--json")
    assert result.returncode == 0, result.stderr
    from studio.core import hardware

    # what the command prints is what the studio detects in this process, as plain JSON
    assert result.json() == json.loads(json.dumps(hardware.describe()))
    text = studio_cli("devices")
    assert text.returncode == 0 and hardware.cpu_info()["model"] in text.stdout


def test_python_m_studio_and_version(studio_cli) -> None:
    import studio

    result = studio_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"studio {studio.__version__}"


# -- bad input: one sentence, exit code 2, nothing written -------------------------------------


def _bad_files(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    """name → (command arguments after the project, a fragment the error must contain)."""
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(DEMO_ONNX.read_bytes()[:5000])
    lying = tmp_path / "model.onnx"
    shutil.copy(DEMO_WEIGHTS, lying)
    zipped = tmp_path / "zipped.onnx"
    shutil.make_archive(str(tmp_path / "z"), "zip", root_dir=DEMO_ARCH.parent, base_dir="digits_cnn.py")
    shutil.move(tmp_path / "z.zip", zipped)
    outside = _external_data_outside(tmp_path)
    pickled = _pickled_module(tmp_path)
    bad_data = tmp_path / "rgb.npz"
    np.savez(bad_data, x=np.zeros((8, 3, 32, 32), np.float32), y=np.zeros(8, np.int64))
    return {
        "missing": (["import", str(tmp_path / "nope.onnx")], "does not exist"),
        "truncated": (["import", str(truncated)], "truncated.onnx"),
        "lying extension": (["import", str(lying)], "model.onnx"),
        "zip named onnx": (["import", str(zipped)], "zipped.onnx"),
        "external data outside": (["import", str(outside)], "outside"),
        "pickle without trust": (["import", str(pickled)], "--trust"),
        "dataset shape": (["bench", str(DEMO_ONNX), "--data", str(bad_data)], "input"),
        "batch 0": (["bench", str(DEMO_ONNX), "--batch", "0"], "batch"),
        "unknown device": (["bench", str(DEMO_ONNX), "--device", "tpu"], "tpu"),
        "missing dataset": (["bench", str(DEMO_ONNX), "--data", str(tmp_path / "none.npz")], "none.npz"),
        "unknown version": (["bench", "v99"], "99"),
    }


def _external_data_outside(tmp_path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder = tmp_path / "ext"
    folder.mkdir()
    weight = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [weight],
    )
    model = helper.make_model(graph)
    onnx.save_model(model, folder / "m.onnx", save_as_external_data=True, location="w.bin", size_threshold=0)
    (tmp_path / "secret.bin").write_bytes((folder / "w.bin").read_bytes())
    model = onnx.load(folder / "m.onnx", load_external_data=False)
    for entry in model.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = "../secret.bin"
    onnx.save_model(model, folder / "m.onnx")
    return folder / "m.onnx"


def _pickled_module(tmp_path: Path) -> Path:
    import torch

    path = tmp_path / "whole.pt"
    torch.save(torch.nn.Sequential(torch.nn.Linear(4, 2)), path)
    return path


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "truncated",
        "lying extension",
        "zip named onnx",
        "external data outside",
        "pickle without trust",
        "dataset shape",
        "batch 0",
        "unknown device",
        "missing dataset",
        "unknown version",
    ],
)
def test_bad_input_is_one_sentence_exit_2_and_writes_nothing(
    case: str, studio_cli, demo_project: Path, tmp_path: Path
) -> None:
    args, fragment = _bad_files(tmp_path)[case]
    project = copy_project(demo_project, tmp_path)
    before = snapshot(project)
    extra = list(FAST) if args[0] == "bench" else []
    result = studio_cli(*args, "--project", project, *extra)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("studio: error: "), result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert snapshot(project) == before


@pytest.mark.parametrize("case", ["missing", "truncated", "pickle without trust", "dataset shape"])
def test_a_refused_model_does_not_create_a_project(case: str, studio_cli, tmp_path: Path) -> None:
    args, _ = _bad_files(tmp_path)[case]
    result = studio_cli(*args, "--project", tmp_path / "new")
    assert result.returncode == 2
    assert not (tmp_path / "new").exists()


def test_not_a_project(studio_cli, tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    result = studio_cli("versions", "--project", tmp_path / "folder")
    assert result.returncode == 2 and "not a studio project" in result.stderr


def test_usage_errors_exit_2(studio_cli) -> None:
    missing = studio_cli("bench")
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.startswith("usage: studio bench")
    assert "error: the following arguments are required: MODEL|VERSION, --project" in missing.stderr
    shape = studio_cli("info", "x.onnx", "--input-shape", "a,b")
    assert shape.returncode == 2 and "argument --input-shape: 'a,b' is not a shape" in shape.stderr


def test_a_colleagues_architecture_version_needs_trust_on_this_machine(
    studio_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "p"
    assert (
        studio_cli("import", DEMO_ARCH, "--weights", DEMO_WEIGHTS, "--project", project, "--trust").returncode
        == 0
    )
    assert studio_cli("pack", project, tmp_path / "p.studio").returncode == 0
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path / "another-machine"))
    assert studio_cli("unpack", tmp_path / "p.studio", tmp_path / "q").returncode == 0
    refused = studio_cli("bench", "v1", "--project", tmp_path / "q", *FAST)
    assert refused.returncode == 2 and "--trust" in refused.stderr
    assert (
        studio_cli("versions", "--project", tmp_path / "q", "--json").json()["versions"][0][
            "latest_measurement"
        ]
        is None
    )
    info = studio_cli("info", "v1", "--project", tmp_path / "q", "--trust", "--json")
    assert info.returncode == 0, info.stderr
    from studio.core.models import collect_files, load_torch_module

    module = load_torch_module(collect_files(DEMO_ARCH, weights=DEMO_WEIGHTS), trusted=True)
    assert info.json()["format"] == "torch_architecture"
    assert info.json()["params"] == sum(p.numel() for p in module.parameters())
    bench = studio_cli("bench", "v1", "--project", tmp_path / "q", *FAST, "--json")
    assert bench.returncode == 0, bench.stderr
    latest = studio_cli("versions", "--project", tmp_path / "q", "--json").json()["versions"][0]
    assert latest["latest_measurement"]["id"] == bench.json()["id"]


def test_a_version_name_with_a_dot_is_a_version_not_a_file(
    studio_cli, demo_project: Path, tmp_path: Path
) -> None:
    project = copy_project(demo_project, tmp_path)
    from studio.project import Project

    with Project.open(project) as p:
        p.store.update_version(1, name="base+quantize.auto")
    found = studio_cli("info", "base+quantize.auto", "--project", project, "--json")
    assert found.returncode == 0, found.stderr
    missing = studio_cli("bench", "nothing.onnx", "--project", project)
    assert missing.returncode == 2 and "neither a model file nor a version" in missing.stderr
