"""The packaging files agree with each other and name everything the frozen studio loads at run time."""

from __future__ import annotations

import ast
import configparser
import json
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
DESKTOP = PACKAGING / "model-optimization-studio.desktop"
METAINFO = PACKAGING / "io.github.modeloptimizationstudio.metainfo.xml"
MIME_XML = PACKAGING / "model-optimization-studio-mime.xml"
SPEC = PACKAGING / "studio.spec"
BUILT_APP = ROOT / "dist" / "studio" / "studio"
MIME_TYPES = {"application/x-studio-project", "application/x-onnx"}
MIME_NS = {"m": "http://www.freedesktop.org/standards/shared-mime-info"}


def _desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # desktop keys are case-sensitive
    parser.read(DESKTOP, encoding="utf-8")
    return parser["Desktop Entry"]


def _list_value(value: str) -> set[str]:
    return {item for item in value.split(";") if item}


def test_desktop_file_has_the_keys_a_launcher_needs() -> None:
    entry = _desktop_entry()
    for key in ("Type", "Name", "Comment", "Exec", "Icon", "Categories", "MimeType", "Terminal"):
        assert entry.get(key), f"{key} is missing from {DESKTOP.name}"
    assert entry["Type"] == "Application"
    assert entry["Terminal"] == "false"
    assert entry["Exec"].split()[0] == "studio"
    assert any(code in entry["Exec"] for code in ("%f", "%F", "%u", "%U")), "files cannot be opened with it"
    assert entry["Categories"].endswith(";") and entry["MimeType"].endswith(";")
    assert _list_value(entry["MimeType"]) == MIME_TYPES


def test_metainfo_parses_and_names_the_desktop_file_and_mime_types() -> None:
    root = ET.parse(METAINFO).getroot()
    assert root.tag == "component" and root.get("type") == "desktop-application"
    assert root.findtext("id") == "io.github.modeloptimizationstudio"
    assert root.findtext("launchable") == DESKTOP.name
    assert root.findtext("name") and root.findtext("summary")
    assert {m.text for m in root.iter("mediatype")} == MIME_TYPES
    icon = root.find("icon")
    assert icon is not None and icon.text == _desktop_entry()["Icon"]


def test_mime_xml_declares_both_globs() -> None:
    root = ET.parse(MIME_XML).getroot()
    globs = {
        mime.get("type"): {g.get("pattern") for g in mime.findall("m:glob", MIME_NS)}
        for mime in root.findall("m:mime-type", MIME_NS)
    }
    assert globs == {"application/x-studio-project": {"*.studio"}, "application/x-onnx": {"*.onnx"}}


def test_spec_is_python_and_collects_what_is_loaded_by_path_or_metadata() -> None:
    text = SPEC.read_text(encoding="utf-8")
    ast.parse(text)  # PyInstaller execs the spec as Python
    assert '"studio.store",\n    include_py_files=True,' in text, "Alembic needs the migrations as .py files"
    assert '"migrations/versions/*.py"' in text and '"migrations/*.mako"' in text
    assert 'collect_data_files("netron")' in text
    assert 'copy_metadata("model-optimization-studio")' in text
    assert '(str(ROOT / "resources"), "resources")' in text
    for module in ("PySide6.QtWebEngineCore", "PySide6.QtWebEngineWidgets"):
        assert f'"{module}"' in text
    for plugin in ("studio_quantization", "studio_pruning", "studio_distillation"):
        assert f'collect_submodules("{plugin}")' in text
    assert 'name="studio"' in text and "COLLECT(" in text


def test_spec_entry_script_supports_spawned_workers() -> None:
    launcher = (PACKAGING / "launcher.py").read_text(encoding="utf-8")
    assert "multiprocessing.freeze_support()" in launcher
    assert "from studio.cli import main" in launcher
    assert '"launcher.py"' in SPEC.read_text(encoding="utf-8")


def test_files_the_spec_collects_exist_in_the_checkout() -> None:
    migrations = ROOT / "studio" / "store" / "migrations"
    assert (migrations / "env.py").is_file() and list((migrations / "versions").glob("0001_*.py"))
    assert (ROOT / "resources" / "demo" / "digits_cnn.onnx").is_file()
    assert (ROOT / "resources" / "icons" / "studio.svg").is_file()


def test_icons_render_at_every_size_from_the_one_svg(tmp_path: Path) -> None:
    pytest.importorskip("PySide6.QtSvg", reason="Qt SVG support is not installed")
    from PIL import Image

    result = subprocess.run(
        [os.environ.get("PYTHON", "python"), str(PACKAGING / "make_icons.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert result.returncode == 0, result.stderr
    for size in (16, 32, 48, 64, 128, 256):
        png = tmp_path / "hicolor" / f"{size}x{size}" / "apps" / "model-optimization-studio.png"
        with Image.open(png) as image:
            assert image.size == (size, size)
            assert image.getextrema()[3][1] == 255, "the icon is fully transparent"
    assert (tmp_path / "hicolor" / "scalable" / "apps" / "model-optimization-studio.svg").is_file()


@pytest.mark.packaging
@pytest.mark.slow
@pytest.mark.skipif(not BUILT_APP.is_file(), reason="no build in dist/studio; run packaging/build.sh")
def test_built_application_runs_the_demo_headless(tmp_path: Path) -> None:
    project = tmp_path / "demo-project"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    env.pop("STUDIO_RESOURCES", None)  # the build must find its own bundled resources
    result = subprocess.run(
        [str(BUILT_APP), "demo", "--headless", "--project", str(project), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert Path(payload["project"]).resolve() == project.resolve()
    assert payload["baseline"]["measurements"], "the demo measured nothing"
    assert (project / "studio.sqlite").is_file()
