"""Model files that carry code are refused until trusted: TorchScript, and `.pt2` beyond the plain layout.

Each test builds the malicious file for real and opens it the way a user would, through the
command line, then shows that the refusal is one sentence, exit code 2, nothing recorded, and
that the file's code did not run.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hostile_files import (
    can_build_native_code,
    library_that_writes,
    plain_program,
    program_with_native_code,
    torchscript_that_writes,
    with_member,
)

from studio.api import UntrustedFileError
from studio.core.models import code_bearing_files, collect_files, load_torch_module


@dataclass(frozen=True)
class Scripted:
    path: Path
    marker: Path  # created by the archive's own code when it is loaded


@pytest.fixture(scope="module")
def scripted_archive(tmp_path_factory: pytest.TempPathFactory) -> Scripted:
    folder = tmp_path_factory.mktemp("scripted")
    made = Scripted(folder / "scripted.pt", folder / "archive-code-ran")
    torchscript_that_writes(made.path, made.marker)
    loaded = subprocess.run(["python", "-c", f"import torch; torch.jit.load({str(made.path)!r})"])
    assert loaded.returncode == 0 and made.marker.exists()  # the file really runs code when loaded
    made.marker.unlink()
    return made


@pytest.fixture
def scripted(scripted_archive: Scripted) -> Path:
    scripted_archive.marker.unlink(missing_ok=True)
    return scripted_archive.path


def test_torchscript_is_code_bearing_and_refused_until_trusted(scripted: Path) -> None:
    files = collect_files(scripted)
    assert code_bearing_files(files) == [scripted]
    with pytest.raises(
        UntrustedFileError, match="TorchScript archive: loading it runs the archive's own code"
    ):
        load_torch_module(files, trusted=False)


def test_importing_an_untrusted_torchscript_runs_none_of_its_code(
    studio_cli, scripted: Path, scripted_archive: Scripted, tmp_path: Path
):
    project = tmp_path / "p"
    result = studio_cli("import", scripted, "--project", project, "--input-shape", "1,3")

    assert result.returncode == 2
    assert not scripted_archive.marker.exists()
    (sentence,) = result.stderr.strip().splitlines()
    assert (
        sentence.startswith("studio: error: scripted.pt is a TorchScript archive") and "--trust" in sentence
    )
    assert not project.exists() or not list((project / "artifacts").glob("*/*"))

    trusted = studio_cli("import", scripted, "--project", project, "--input-shape", "1,3", "--trust")
    assert trusted.returncode == 0, trusted.stderr
    assert scripted_archive.marker.exists()  # the user chose to run it


def test_a_plain_export_needs_no_trust(tmp_path: Path) -> None:
    files = collect_files(plain_program(tmp_path / "plain.pt2"))
    assert code_bearing_files(files) == []
    assert isinstance(load_torch_module(files, trusted=False), torch.nn.Module)


@pytest.mark.skipif(not can_build_native_code(), reason="no C compiler to build the native library with")
def test_a_pt2_with_a_native_library_is_refused_and_the_library_never_loads(studio_cli, tmp_path: Path):
    marker = tmp_path / "native-ran"
    library = library_that_writes(tmp_path / "announce.so", marker)
    loaded = subprocess.run(["python", "-c", f"import ctypes; ctypes.CDLL({str(library)!r})"])
    assert loaded.returncode == 0 and marker.exists()  # the library really runs code when loaded
    marker.unlink()
    crafted = program_with_native_code(tmp_path / "native.pt2", marker)

    files = collect_files(crafted)
    assert code_bearing_files(files) == [crafted]
    with pytest.raises(UntrustedFileError, match="native code or pickled Python objects"):
        load_torch_module(files, trusted=False)
    project = tmp_path / "p"
    result = studio_cli("import", crafted, "--project", project)
    assert result.returncode == 2 and "--trust" in result.stderr
    assert not marker.exists()
    assert not project.exists() or not list((project / "artifacts").glob("*/*"))


@pytest.mark.parametrize(
    "member",
    ["data/executorch/program.bin", "extra/loader.py", "models/../../escape.json", "data/weights/library.so"],
)
def test_any_member_outside_the_plain_export_layout_makes_a_pt2_code_bearing(tmp_path: Path, member: str):
    crafted = with_member(plain_program(tmp_path / "plain.pt2"), tmp_path / "crafted.pt2", member, b"\x7fELF")
    assert code_bearing_files(collect_files(crafted)) == [crafted]


def test_a_pt2_whose_config_names_a_pickled_object_is_code_bearing(tmp_path: Path) -> None:
    crafted = with_member(
        plain_program(tmp_path / "plain.pt2"),
        tmp_path / "crafted.pt2",
        "data/constants/extra_constants_config.json",
        json.dumps({"config": {"c": {"path_name": "custom_obj_0", "use_pickle": True}}}).encode(),
    )
    assert code_bearing_files(collect_files(crafted)) == [crafted]
