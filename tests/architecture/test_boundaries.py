"""The import rules of the design, checked on every run: Qt stays in the window, layers point down."""

from __future__ import annotations

import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import studio

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_hold() -> None:
    lint = shutil.which("lint-imports")
    assert lint is not None, "import-linter is part of the development install: pip install -e '.[dev]'"
    result = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_qt_contract_covers_every_package_but_the_window() -> None:
    """A module added later is below the window too, unless it lives in studio.ui."""
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (qt,) = [c for c in config["contracts"] if c["name"].startswith("Qt lives only in studio.ui")]
    top_level = {
        f"studio.{info.name}"
        for info in pkgutil.iter_modules(studio.__path__)
        if info.name not in ("ui", "__main__")
    }
    plugins = {name for name in config["root_packages"] if name != "studio"}
    assert set(qt["source_modules"]) == top_level | plugins
    assert not qt.get("allow_indirect_imports", False)
    assert qt.get("ignore_imports") == ["studio.cli -> studio.ui.app"]  # the entry point opens the window


def _headless_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(studio.__path__, "studio."):
        if info.name.startswith("studio.ui") or info.name in ("studio.__main__",):
            continue
        if ".migrations" in info.name:
            continue  # Alembic loads these by path, with its own context
        names.append(info.name)
    return names


def test_every_module_below_the_window_imports_without_qt_or_a_display() -> None:
    """Import every non-UI module in a process where PySide6 cannot be imported and there is no
    display: nothing headless may need Qt, even indirectly."""
    code = (
        "import sys, importlib\n"
        "sys.modules['PySide6'] = None\nsys.modules['pyqtgraph'] = None\n"
        f"for name in {_headless_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_starting_the_command_line_does_not_import_torch() -> None:
    """`studio --help` and the window's start must not pay for importing torch."""
    code = "import sys, studio.cli, studio.project, studio.store\nprint('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.stdout.strip() == "False", result.stderr


def test_code_is_ruff_clean() -> None:
    ruff = shutil.which("ruff")
    assert ruff is not None, "ruff is part of the development install: pip install -e '.[dev]'"
    result = subprocess.run(
        [ruff, "check", "studio", "tests", "resources", "plugins"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout
