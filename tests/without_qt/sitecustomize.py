"""Makes Qt impossible to import in this process and in every process it starts.

Put this folder first on PYTHONPATH (tests/run.py does, for the pass of the tests below the
window): Python runs this file at start-up, in the test process, its command-line subprocesses
and its spawned workers alike. Any import of Qt then fails as if Qt were not installed, proving
that the command line, the jobs, the store and the rest of the headless studio need none.
"""

from __future__ import annotations

import sys
from importlib.abc import MetaPathFinder

REFUSED = ("PySide6", "shiboken6", "pyqtgraph")


class _RefuseQt(MetaPathFinder):
    def find_spec(self, fullname: str, path=None, target=None):  # noqa: ANN001 - the finder protocol
        if fullname.split(".", 1)[0] in REFUSED:
            raise ModuleNotFoundError(
                f"No module named {fullname!r} (Qt is not importable in the headless test pass)",
                name=fullname,
            )
        return None


sys.meta_path.insert(0, _RefuseQt())
