"""Fixtures for the window tests: a real demo project (built once), real worker pools, a real window.

The demo project is made once per session with the real ``run_demo`` (import and measure the
shipped digits CNN) and copied for each test, with the trust decision for its architecture file,
so that every test starts from the same state without paying for the measurement again.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

_SCREEN = Path(__file__).with_name("offscreen-screen.json")
if os.environ.get("QT_QPA_PLATFORM", "offscreen") == "offscreen":
    # A 1600×1000 offscreen screen: the default one is too small for the window's real layout.
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={_SCREEN}"

from studio.ui.app import configure_environment  # noqa: E402

configure_environment()  # before pytest-qt makes the QApplication


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(project folder, trust.json) of a demo project made by the real demo command."""
    from studio.demo import run_demo

    data = tmp_path_factory.mktemp("demo-data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDIO_DATA_DIR", str(data))
        result = run_demo(tmp_path_factory.mktemp("demo-template") / "digits-demo")
    return Path(result["project"]), data / "trust.json"


@pytest.fixture
def demo_project(demo_template, tmp_path: Path, _private_data_dir: Path) -> Path:
    """A fresh copy of the demo project, trusted on this test's private data folder."""
    project, trust = demo_template
    copy = tmp_path / "digits-demo"
    shutil.copytree(project, copy)
    shutil.copy(trust, _private_data_dir / "trust.json")
    return copy


@pytest.fixture
def settings(tmp_path: Path):
    from studio.ui.settings import StudioSettings

    return StudioSettings(tmp_path / "settings.ini")


@pytest.fixture
def make_window(qtbot, settings) -> Iterator:
    """Main windows with one CPU worker each, closed (workers stopped) after the test."""
    from studio.ui.controller import ProjectController
    from studio.ui.main_window import MainWindow
    from studio.ui.pool import PoolSettings

    windows = []

    def make(workers: int = 1):
        controller = ProjectController(
            PoolSettings(cpu_workers=workers, gpus=()), cache_dir=settings.path.parent / "graphs"
        )
        window = MainWindow(settings, controller)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()


@pytest.fixture
def window(make_window):
    return make_window()
