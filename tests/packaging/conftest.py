"""Registers the `packaging` marker: tests that need the built application in dist/studio."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "packaging: needs the PyInstaller build in dist/studio (packaging/build.sh); skipped without it",
    )
