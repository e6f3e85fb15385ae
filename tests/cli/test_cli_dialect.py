"""One dialect across the command line: `--project` everywhere, parameters a person can read,
one-sentence refusals, and quiet ends when the reader of the output goes away."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from studio.core.resources import resource

DEMO_ONNX = resource("demo", "digits_cnn.onnx")
STUDIO = [sys.executable, "-m", "studio"]
ENV = {"PYTHONWARNINGS": "ignore"}
EXIT_BROKEN_PIPE = 141


@pytest.fixture(scope="module")
def base_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dialect") / "p"
    subprocess.run(
        [*STUDIO, "import", str(DEMO_ONNX), "--project", str(root), "--name", "base"],
        check=True,
        capture_output=True,
    )
    return root


@pytest.fixture
def project(base_project: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "project"
    shutil.copytree(base_project, dst)
    return dst


def one_error(stderr: str) -> str:
    """The refusal, checked to be the single `studio: error:` sentence the bar asks for."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("studio: error: "), stderr
    return lines[0]


# -- every command that works on a project takes --project -------------------------------------


@pytest.mark.parametrize(
    "command",
    ["import", "info", "bench", "optimize", "run", "versions", "jobs", "demo"]
    + ["export", "pack", "unpack", "report"],
)
def test_every_project_command_takes_project(studio_cli, command: str) -> None:
    result = studio_cli(command, "--help")
    assert result.returncode == 0, result.stderr
    assert "--project DIR" in result.stdout


def test_report_and_pack_take_project_as_the_others_do(studio_cli, project: Path, tmp_path: Path) -> None:
    report = studio_cli("report", "--project", project, "--out", tmp_path / "r.html", "--json")
    assert report.returncode == 0, report.stderr
    assert report.json()["versions"] == 1 and (tmp_path / "r.html").is_file()
    packed = studio_cli("pack", "--project", project, tmp_path / "p.studio", "--json")
    assert packed.returncode == 0, packed.stderr
    assert packed.json()["versions"] == 1 and (tmp_path / "p.studio").is_file()
    # the project after the output file reads the same
    again = studio_cli("pack", tmp_path / "q.studio", "--project", project)
    assert again.returncode == 0 and (tmp_path / "q.studio").is_file(), again.stderr
    unpacked = studio_cli("unpack", tmp_path / "p.studio", "--project", tmp_path / "copy", "--json")
    assert unpacked.returncode == 0, unpacked.stderr
    listed = studio_cli("versions", "--project", tmp_path / "copy", "--json").json()["versions"]
    assert [v["name"] for v in listed] == ["base"]


def test_the_project_by_position_still_works(studio_cli, project: Path, tmp_path: Path) -> None:
    assert studio_cli("report", project, "--out", tmp_path / "r.html").returncode == 0
    assert (tmp_path / "r.html").is_file()
    assert studio_cli("pack", project, tmp_path / "p.studio").returncode == 0
    assert studio_cli("unpack", tmp_path / "p.studio", tmp_path / "copy").returncode == 0
    assert (tmp_path / "copy" / "studio.sqlite").is_file()
    # the same folder both ways is one project, not a conflict
    same = studio_cli("pack", project, tmp_path / "same.studio", "--project", project)
    assert same.returncode == 0, same.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["report", "--out", "r.html"], "studio report needs a project: add --project DIR"),
        (["pack", "out.studio"], "studio pack needs a project: add --project DIR"),
        (["report", "{project}", "--project", "elsewhere", "--out", "r.html"], "two projects given"),
        (["pack", "{project}", "out.studio", "--project", "elsewhere"], "two projects given"),
    ],
)
def test_no_project_or_two_are_refused_in_one_sentence(
    studio_cli, project: Path, tmp_path: Path, args: list[str], fragment: str
) -> None:
    result = studio_cli(*(str(project) if a == "{project}" else a for a in args))
    assert result.returncode == 2 and result.stdout == ""
    assert fragment in one_error(result.stderr)
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "out.studio").exists()


# -- plugins: each parameter's type, default and help -------------------------------------------


def test_plugins_prints_each_parameter_with_type_default_and_help(studio_cli) -> None:
    result = studio_cli("plugins")
    assert result.returncode == 0, result.stderr
    dynamic = section(result.stdout, "quantize.dynamic: Dynamic INT8 quantization")
    assert words(dynamic[1]) == "weight_type int8|uint8 default int8"
    assert dynamic[2].startswith("      Integer type of the weights.")
    structured = section(result.stdout, "prune.structured: Structured pruning (channels)")
    assert words(parameter(structured, "ratio")) == "ratio float, 0 < x < 1 default 0.5"
    assert words(parameter(structured, "round_to")) == "round_to int, 2 ≤ x ≤ 256 or null default null"
    assert words(parameter(structured, "keep_layers")) == "keep_layers list of text default []"  # a factory's
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines if line.startswith("      ")) <= 100
    assert "--set KEY=VALUE" in lines[-1]


def section(text: str, header: str) -> list[str]:
    """One technique's block of the text: its header line down to the blank line after it."""
    lines = text.splitlines()
    start = lines.index(header)
    end = lines.index("", start)
    return lines[start:end]


def parameter(block: list[str], name: str) -> str:
    return next(line for line in block if line.startswith(f"  {name} "))


def words(line: str) -> str:
    return " ".join(line.split())


def test_plugins_json_keeps_the_schema_and_adds_the_flat_parameters(studio_cli) -> None:
    result = studio_cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    by_name = {t["name"]: t for t in result.json()["techniques"]}
    dynamic = by_name["quantize.dynamic"]
    assert dynamic["params"]["properties"]["weight_type"]["enum"] == ["int8", "uint8"]
    flat = {p["name"]: p for p in dynamic["parameters"]}
    assert list(flat) == list(dynamic["params"]["properties"])
    assert flat["weight_type"] == {
        "name": "weight_type",
        "type": "int8|uint8",
        "default": "int8",
        "required": False,
        "help": dynamic["params"]["properties"]["weight_type"]["description"],
    }
    assert flat["nodes_to_exclude"]["default"] == []


# -- a mistyped first word ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "sentence"),
    [
        ("my-projct", "studio: error: no such command, file or project: 'my-projct'"),
        (
            "verions",
            "studio: error: no such command, file or project: 'verions' (did you mean 'studio versions'?)",
        ),
    ],
)
def test_a_mistyped_first_word_is_one_sentence(studio_cli, tmp_path: Path, word: str, sentence: str) -> None:
    result = studio_cli(word, timeout=60)  # a window opening would never return
    assert result.returncode == 2 and result.stdout == ""
    assert one_error(result.stderr).startswith(sentence)
    assert "invalid choice" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_an_existing_path_with_more_words_says_how_to_open_it(studio_cli, project: Path) -> None:
    result = studio_cli(project, "--json", timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert "to open it in the window, give it alone" in one_error(result.stderr)


# -- --set with a key the technique does not have -----------------------------------------------


def test_an_unknown_set_key_lists_the_valid_keys(studio_cli, tmp_path: Path) -> None:
    result = studio_cli(
        "optimize", DEMO_ONNX, "quantize.dynamic", "--project", tmp_path / "new", "--set", "per_chanel=true"
    )
    assert result.returncode == 2 and result.stdout == ""
    assert one_error(result.stderr) == (
        "studio: error: quantize.dynamic: there is no parameter 'per_chanel'; its parameters are "
        "weight_type, per_channel, op_types, nodes_to_exclude, reduce_range, preprocess"
    )
    assert not (tmp_path / "new").exists()


# -- a reader that goes away --------------------------------------------------------------------


def _chain_model(path: Path, layers: int) -> Path:
    """An ONNX chain of Relu nodes: its layer table is far longer than a pipe holds."""
    nodes = [helper.make_node("Relu", [f"t{i}"], [f"t{i + 1}"], name=f"relu_{i}") for i in range(layers)]
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("t0", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info(f"t{layers}", TensorProto.FLOAT, [1, 8])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_a_reader_that_stops_after_one_line_ends_the_command_quietly(tmp_path: Path) -> None:
    model = _chain_model(tmp_path / "chain.onnx", 3000)
    proc = subprocess.Popen(
        [*STUDIO, "info", str(model)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **ENV},
        cwd=tmp_path,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"format: onnx")
    proc.stdout.close()  # the rest of the table (far more than a pipe holds) has nowhere to go
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=240) == EXIT_BROKEN_PIPE
    assert stderr == ""


def test_jobs_into_head_ends_quietly(project: Path, tmp_path: Path) -> None:
    command = f"{shlex.join([*STUDIO, 'jobs', '--project', str(project)])} | head -1"
    result = subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        env={**os.environ, **ENV},
        cwd=tmp_path,
        timeout=240,
    )
    assert result.returncode == 0 and result.stdout == "no jobs yet\n"
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["jobs", "--project", "{project}"], EXIT_BROKEN_PIPE),
        (["versions", "--project", "{project}", "--json"], EXIT_BROKEN_PIPE),
        (["plugins"], EXIT_BROKEN_PIPE),
        (["--help"], 0),  # argparse drops what it cannot write and exits as after any help
    ],
)
def test_output_into_a_pipe_nobody_reads_ends_quietly(
    project: Path, tmp_path: Path, args: list[str], code: int
) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte is written
    try:
        result = subprocess.run(
            [*STUDIO, *(str(project) if a == "{project}" else a for a in args)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **ENV},
            cwd=tmp_path,
            timeout=240,
        )
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == code
