"""Model files that carry code are refused until trusted: TorchScript, and `.pt2` beyond the plain layout.

Each test builds the malicious file for real and opens it the way a user would, through the
command line, then shows that the refusal is one sentence, exit code 2, nothing recorded, and
that the file's code did not run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch

from studio.api import UntrustedFileError
from studio.core.models import code_bearing_files, collect_files, load_torch_module

# A scripted class whose __setstate__ runs when the archive is loaded (torch.jit.load calls it).
SCRIPTED_SOURCE = textwrap.dedent(
    """
    import sys
    from typing import Tuple

    import torch


    class Scripted(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(3))

        @torch.jit.export
        def __getstate__(self) -> Tuple[torch.Tensor, bool]:
            return (self.weight, self.training)

        @torch.jit.export
        def __setstate__(self, state: Tuple[torch.Tensor, bool]) -> None:
            print("code from the archive ran")
            self.weight = state[0]
            self.training = state[1]

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.weight


    torch.jit.save(torch.jit.script(Scripted()), sys.argv[1])
    """
)

# A native library that announces itself when loaded.
LIBRARY_SOURCE = textwrap.dedent(
    """
    #include <stdio.h>
    __attribute__((constructor)) static void announce(void) {
        FILE *f = fopen(MARKER, "w");
        if (f) { fputs("native code from the archive ran", f); fclose(f); }
    }
    """
)


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("scripted")
    (folder / "make.py").write_text(SCRIPTED_SOURCE)
    path = folder / "scripted.pt"
    made = subprocess.run(["python", str(folder / "make.py"), str(path)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    loaded = subprocess.run(
        ["python", "-c", f"import torch; torch.jit.load({str(path)!r})"], capture_output=True, text=True
    )
    assert "code from the archive ran" in loaded.stdout  # the file really runs code when loaded
    return path


def test_torchscript_is_code_bearing_and_refused_until_trusted(scripted: Path) -> None:
    files = collect_files(scripted)
    assert code_bearing_files(files) == [scripted]
    with pytest.raises(
        UntrustedFileError, match="TorchScript archive: loading it runs the archive's own code"
    ):
        load_torch_module(files, trusted=False)


def test_importing_an_untrusted_torchscript_runs_none_of_its_code(studio_cli, scripted: Path, tmp_path: Path):
    project = tmp_path / "p"
    result = studio_cli("import", scripted, "--project", project, "--input-shape", "1,3")

    assert result.returncode == 2
    assert "code from the archive ran" not in result.stdout + result.stderr
    (sentence,) = result.stderr.strip().splitlines()
    assert (
        sentence.startswith("studio: error: scripted.pt is a TorchScript archive") and "--trust" in sentence
    )
    assert not project.exists() or not list((project / "artifacts").glob("*/*"))

    trusted = studio_cli("import", scripted, "--project", project, "--input-shape", "1,3", "--trust")
    assert trusted.returncode == 0, trusted.stderr
    assert "code from the archive ran" in trusted.stdout + trusted.stderr  # the user chose to run it


def _plain_program(path: Path) -> Path:
    module = torch.nn.Sequential(torch.nn.Linear(4, 2)).eval()
    torch.export.save(torch.export.export(module, (torch.randn(1, 4),)), str(path))
    return path


def _with_member(source: Path, target: Path, name: str, data: bytes) -> Path:
    with zipfile.ZipFile(source) as archive:
        root = archive.namelist()[0].split("/", 1)[0]
        with zipfile.ZipFile(target, "w") as out:
            for item in archive.infolist():
                out.writestr(item, archive.read(item))
            out.writestr(f"{root}/{name}", data)
    return target


def test_a_plain_export_needs_no_trust(tmp_path: Path) -> None:
    files = collect_files(_plain_program(tmp_path / "plain.pt2"))
    assert code_bearing_files(files) == []
    assert isinstance(load_torch_module(files, trusted=False), torch.nn.Module)


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler to build the native library with")
def test_a_pt2_with_a_native_library_is_refused_and_the_library_never_loads(studio_cli, tmp_path: Path):
    marker = tmp_path / "native-ran"
    source = tmp_path / "announce.c"
    source.write_text(LIBRARY_SOURCE)
    library = tmp_path / "announce.so"
    built = subprocess.run(
        ["cc", "-shared", "-fPIC", f'-DMARKER="{marker}"', str(source), "-o", str(library)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    loaded = subprocess.run(["python", "-c", f"import ctypes; ctypes.CDLL({str(library)!r})"])
    assert loaded.returncode == 0 and marker.exists()  # the library really runs code when loaded
    marker.unlink()
    plain = _plain_program(tmp_path / "plain.pt2")
    crafted = _with_member(
        plain, tmp_path / "native.pt2", "data/aotinductor/model/model.so", library.read_bytes()
    )

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
    crafted = _with_member(
        _plain_program(tmp_path / "plain.pt2"), tmp_path / "crafted.pt2", member, b"\x7fELF"
    )
    assert code_bearing_files(collect_files(crafted)) == [crafted]


def test_a_pt2_whose_config_names_a_pickled_object_is_code_bearing(tmp_path: Path) -> None:
    crafted = _with_member(
        _plain_program(tmp_path / "plain.pt2"),
        tmp_path / "crafted.pt2",
        "data/constants/extra_constants_config.json",
        json.dumps({"config": {"c": {"path_name": "custom_obj_0", "use_pickle": True}}}).encode(),
    )
    assert code_bearing_files(collect_files(crafted)) == [crafted]
