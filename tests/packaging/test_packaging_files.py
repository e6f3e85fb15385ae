"""The packaging files agree with each other and name everything the frozen studio loads at run time."""

from __future__ import annotations

import ast
import configparser
import json
import os
import shutil
import sqlite3
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
    entry = _desktop_entry()
    assert (root.findtext("name"), root.findtext("summary")) == (entry["Name"], entry["Comment"])
    assert {m.text for m in root.iter("mediatype")} == MIME_TYPES
    icon = root.find("icon")
    assert icon is not None and icon.text == entry["Icon"]


def test_mime_xml_declares_both_globs() -> None:
    root = ET.parse(MIME_XML).getroot()
    globs = {
        mime.get("type"): {g.get("pattern") for g in mime.findall("m:glob", MIME_NS)}
        for mime in root.findall("m:mime-type", MIME_NS)
    }
    assert globs == {"application/x-studio-project": {"*.studio"}, "application/x-onnx": {"*.onnx"}}


@pytest.mark.parametrize(
    ("tool", "args", "path"),
    [
        ("desktop-file-validate", [], DESKTOP),
        ("appstreamcli", ["validate", "--no-net"], METAINFO),
    ],
)
def test_desktop_integration_files_pass_the_freedesktop_validators(tool: str, args: list, path: Path) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (desktop-file-utils, appstream)")
    result = subprocess.run([tool, *args, str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mime_types_register_with_the_mime_database(tmp_path: Path) -> None:
    if shutil.which("update-mime-database") is None:
        pytest.skip("update-mime-database is not installed (shared-mime-info)")
    mime = tmp_path / "mime"
    (mime / "packages").mkdir(parents=True)
    shutil.copy(MIME_XML, mime / "packages")
    result = subprocess.run(
        ["update-mime-database", str(mime)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "XDG_DATA_HOME": str(tmp_path)},
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    globs = (mime / "globs2").read_text(encoding="utf-8")
    assert "application/x-studio-project:*.studio" in globs and "application/x-onnx:*.onnx" in globs


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
    assert 'for plugin in ("studio_quantization", "studio_pruning", "studio_distillation"):' in text
    assert "modules = collect_submodules(plugin)" in text and "raise SystemExit" in text
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


@pytest.mark.ui  # the icons are drawn with Qt
def test_icons_render_at_every_size_from_the_one_svg(tmp_path: Path) -> None:
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


def _run_built(*args: str, cwd: Path, data: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "STUDIO_DATA_DIR": str(data)}
    env.pop("STUDIO_RESOURCES", None)  # the build must find its own bundled resources
    env.pop("PYTHONPATH", None)  # and its own modules
    return subprocess.run(
        [str(BUILT_APP), *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd
    )


@pytest.fixture(scope="module")
def built_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """(project, data folder, baseline) of the demo made by the built application."""
    root = tmp_path_factory.mktemp("built")
    project, data = root / "demo-project", root / "data"
    data.mkdir()
    demo = _run_built("demo", "--headless", "--project", str(project), "--json", cwd=root, data=data)
    assert demo.returncode == 0, demo.stderr
    baseline = json.loads(demo.stdout)["baseline"]
    assert baseline["measurements"], "the demo measured nothing"
    return project, data, baseline


def _copy_of(built_demo, tmp_path: Path) -> tuple[Path, Path, dict]:
    project, data, baseline = built_demo
    copy_project, copy_data = tmp_path / "project", tmp_path / "data"
    shutil.copytree(project, copy_project)
    shutil.copytree(data, copy_data)
    return copy_project, copy_data, baseline


@pytest.mark.packaging
@pytest.mark.slow
@pytest.mark.skipif(not BUILT_APP.is_file(), reason="no build in dist/studio; run packaging/build.sh")
def test_built_application_loads_every_built_in_technique(tmp_path: Path) -> None:
    plugins = _run_built("plugins", "--json", cwd=tmp_path, data=tmp_path)
    assert plugins.returncode == 0, plugins.stderr
    loaded = {p["name"]: p for p in json.loads(plugins.stdout)["techniques"]}
    assert set(loaded) >= {
        "quantize.dynamic", "quantize.static", "quantize.fp16", "quantize.auto",
        "prune.magnitude", "prune.structured", "distill",
    }  # fmt: skip
    assert not {name: p["error"] for name, p in loaded.items() if p["error"]}


@pytest.mark.packaging
@pytest.mark.slow
@pytest.mark.skipif(not BUILT_APP.is_file(), reason="no build in dist/studio; run packaging/build.sh")
def test_built_application_quantizes_the_demo_in_a_worker(built_demo, tmp_path: Path) -> None:
    project, data, baseline = _copy_of(built_demo, tmp_path)
    step = _run_built(
        "optimize", "baseline", "quantize.static", "--data", "digits", "--project", str(project), "--json",
        cwd=tmp_path, data=data,
    )  # fmt: skip
    assert step.returncode == 0, step.stderr
    quantized = json.loads(step.stdout)
    assert quantized["parent_id"] == baseline["id"] and quantized["technique"] == "quantize.static"
    assert quantized["measurements"]["accuracy"]["top1"] > 0.98
    assert quantized["size_bytes"] < baseline["size_bytes"] / 3


@pytest.mark.packaging
@pytest.mark.slow
@pytest.mark.skipif(not BUILT_APP.is_file(), reason="no build in dist/studio; run packaging/build.sh")
def test_built_application_runs_every_technique(built_demo, tmp_path: Path) -> None:
    """Each technique imports its own libraries in the worker (torch-pruning, training, the ONNX
    Runtime quantizers and float16 converter): a module the build left out fails only here."""
    project, data, _ = _copy_of(built_demo, tmp_path)
    recipes = {
        "train.yaml": "model: baseline\ndata: digits\nsteps:\n"
        "  - technique: prune.structured\n    params: {ratio: 0.5, finetune_epochs: 1}\n"
        "  - technique: distill\n    params: {epochs: 1}\n"
        "  - technique: quantize.static\n    params: {calibration_samples: 32}\n",
        "convert.yaml": "model: baseline\ndata: digits\nsteps:\n"
        "  - technique: prune.magnitude\n"
        "  - technique: quantize.fp16\n",
        "auto.yaml": "model: baseline\ndata: digits\nsteps:\n"
        "  - technique: quantize.auto\n    params: {max_trials: 2, sensitivity_samples: 8}\n",
    }
    made = []
    for name, text in recipes.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        result = _run_built(
            "run", str(tmp_path / name), "--project", str(project), "--json", cwd=tmp_path, data=data
        )
        assert result.returncode == 0, f"{name}: {result.stderr}"
        made += [step["technique"] for step in json.loads(result.stdout)["steps"]]
    assert made == [
        "prune.structured", "distill", "quantize.static", "prune.magnitude", "quantize.fp16", "quantize.auto"
    ]  # fmt: skip


@pytest.mark.packaging
@pytest.mark.slow
@pytest.mark.skipif(not BUILT_APP.is_file(), reason="no build in dist/studio; run packaging/build.sh")
def test_built_window_opens_the_demo_hands_over_and_exits_cleanly(tmp_path: Path) -> None:
    """`studio demo`: the window makes the demo project (import, measurement in a spawned
    process), opens it with its job workers, takes a second launch's file, and obeys SIGTERM."""
    from running_app import group_alive, job_workers, kill_group, launch, stop, wait_until

    project, data = tmp_path / "window-demo", tmp_path / "data"
    data.mkdir()
    window = launch([str(BUILT_APP), "demo", "--project", str(project)], data_dir=data, cwd=tmp_path)
    try:
        wait_until(lambda: job_workers(window.pid), 180, "the demo project open with its job workers")
        second = _run_built(str(project), cwd=tmp_path, data=data, timeout=60)
        assert second.returncode == 0, second.stderr
        assert window.poll() is None, "the first window must keep running"
        code, err = stop(window)
        assert code == 0, err
        assert "Traceback" not in err, err
        wait_until(lambda: not group_alive(window.pid), 30, "every process the studio started to end")
    finally:
        kill_group(window)
    assert "geometry" in (data / "settings.ini").read_text(), "the window saved its layout on the way out"
    with sqlite3.connect(project / "studio.sqlite") as db:
        assert db.execute("SELECT name FROM model_versions").fetchall() == [("baseline",)]
        assert db.execute("SELECT count(*) FROM measurements").fetchone() == (1,)
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


@pytest.mark.packaging
@pytest.mark.slow
@pytest.mark.skipif(not BUILT_APP.is_file(), reason="no build in dist/studio; run packaging/build.sh")
def test_built_application_ships_every_library_its_libraries_need() -> None:
    result = subprocess.run(
        [os.environ.get("PYTHON", "python"), str(PACKAGING / "check_build.py"), str(BUILT_APP.parent)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.packaging
@pytest.mark.slow
@pytest.mark.skipif(not BUILT_APP.is_file(), reason="no build in dist/studio; run packaging/build.sh")
def test_built_application_installs_for_a_user_and_uninstalls(tmp_path: Path) -> None:
    prefix = tmp_path / "home" / ".local"
    installed = subprocess.run(
        [str(PACKAGING / "install.sh"), str(prefix)], capture_output=True, text=True, timeout=600
    )
    assert installed.returncode == 0, installed.stderr
    program = prefix / "lib" / "model-optimization-studio" / "studio"
    assert (prefix / "bin" / "studio").resolve() == program.resolve()
    version = subprocess.run([str(prefix / "bin" / "studio"), "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("studio ")

    desktop = prefix / "share" / "applications" / DESKTOP.name
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str
    parser.read(desktop, encoding="utf-8")
    exec_line = parser["Desktop Entry"]["Exec"]
    assert exec_line == f'"{program}" %f', "the launcher must not depend on PATH"
    assert Path(parser["Desktop Entry"]["TryExec"]) == program
    assert (prefix / "share" / "mime" / "packages" / MIME_XML.name).is_file()
    assert (prefix / "share" / "metainfo" / METAINFO.name).is_file()
    assert (
        prefix / "share" / "icons" / "hicolor" / "48x48" / "apps" / "model-optimization-studio.png"
    ).is_file()

    removed = subprocess.run(
        [str(PACKAGING / "install.sh"), "--uninstall", str(prefix)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert removed.returncode == 0, removed.stderr
    left = [p for p in prefix.rglob("*") if p.is_file() or p.is_symlink()]
    assert not [p for p in left if "model-optimization-studio" in p.name or p.name == "studio"], left


def _release_archive() -> Path | None:
    found = sorted((ROOT / "dist").glob("model-optimization-studio-*-linux-*.tar.gz"))
    return found[-1] if found else None


@pytest.mark.packaging
@pytest.mark.slow
@pytest.mark.skipif(_release_archive() is None, reason="no release archive in dist; run packaging/build.sh")
def test_the_release_archive_unpacks_and_installs_on_its_own(tmp_path: Path) -> None:
    import tarfile

    archive = _release_archive()
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        top = {n.split("/", 1)[0] for n in names}
        assert top == {archive.name.removesuffix(".tar.gz")}, top
        links = [m for m in tar.getmembers() if m.issym()]
        assert all(not m.linkname.startswith(("/", archive.name.removesuffix(".tar.gz"))) for m in links)
        tar.extractall(tmp_path, filter="tar")
    release = tmp_path / archive.name.removesuffix(".tar.gz")
    assert (release / "studio" / "studio").is_file() and (release / "install.sh").is_file()
    assert not [p for p in release.rglob("*") if p.is_symlink() and not p.exists()], "dangling links"

    prefix = tmp_path / "opt"
    installed = subprocess.run(
        [str(release / "install.sh"), str(prefix)], capture_output=True, text=True, timeout=600
    )
    assert installed.returncode == 0, installed.stderr
    version = subprocess.run([str(prefix / "bin" / "studio"), "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("studio ")
