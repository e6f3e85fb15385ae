"""Opening things: model files (asking for weights and for trust where needed), project folders,
the demo, and whatever is dropped on the window.

A model opened with no project open goes into the data folder's "models" project, so that a
person can look at a file without first deciding where a project should live.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

PROJECT_DATABASE = "studio.sqlite"  # studio.project.DATABASE_NAME, without importing the store
MODEL_FILTER = "Models (*.onnx *.pt *.pth *.pt2 *.py);;All files (*)"
WEIGHTS_FILTER = "Weights (*.safetensors *.pt *.pth *.bin);;All files (*)"
TRUST_QUESTION_NAME = "studioTrustQuestion"

Request = tuple[Path, Path | None]  # (model file, weights file for an architecture)


class Opener(QObject):
    """Turns "open this" into controller commands; ``window`` is the dialogs' parent."""

    def __init__(self, window: QWidget, controller, settings) -> None:
        super().__init__(window)
        self.window, self.controller, self.settings = window, controller, settings
        self._pending: Request | None = None  # to import once the "models" project is open
        self._last: Request | None = None  # the latest request, for a trust question about it
        controller.project_opened.connect(self._import_pending)

    def open_model(self, path: Path, weights: Path | None = None) -> None:
        request = (Path(path), None if weights is None else Path(weights))
        self._last = request
        self.settings.add_recent("models", request[0])
        if self.controller.session is None:
            self._pending = request
            self.controller.open_project(self.settings.data_folder / "projects" / "models", create=True)
        else:
            self.controller.import_model(request[0], weights=request[1])

    def open_project(self, path: Path, *, create: bool = False) -> None:
        self.controller.open_project(Path(path), create=create)

    def open_path(self, path: Path) -> None:
        """A project folder is opened; anything else is imported as a model."""
        path = Path(path)
        if path.is_dir() and (path / PROJECT_DATABASE).is_file():
            self.open_project(path)
        else:
            self.open_model(path)

    def open_demo(self) -> None:
        self.controller.run_demo(self.settings.data_folder / "projects" / "digits-demo")

    def _import_pending(self, _session) -> None:
        if self._pending is not None:
            (path, weights), self._pending = self._pending, None
            self.controller.import_model(path, weights=weights)

    # -- dialogs ----------------------------------------------------------------------------------

    def model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open model", "", MODEL_FILTER)
        if not path:
            return
        weights = None
        if path.endswith(".py"):  # an architecture file: its weights are a second file
            weights, _ = QFileDialog.getOpenFileName(
                self.window, "Weights for this architecture", str(Path(path).parent), WEIGHTS_FILTER
            )
            if not weights:
                return
        self.open_model(Path(path), Path(weights) if weights else None)

    def project_dialog(self, *, create: bool = False) -> None:
        title = "New project: choose an empty folder" if create else "Open project folder"
        path = QFileDialog.getExistingDirectory(self.window, title)
        if path:
            self.open_project(Path(path), create=create)

    # -- trust ------------------------------------------------------------------------------------

    def handle_untrusted(self, error: BaseException) -> bool:
        """Ask whether to trust the file just opened; True when ``error`` was that question's cause."""
        from studio.api import UntrustedFileError

        if not isinstance(error, UntrustedFileError) or self._last is None:
            return False
        self._ask_trust(*self._last, str(error))
        return True

    def _ask_trust(self, path: Path, weights: Path | None, reason: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Question, "Trust this file?", reason[:1].upper() + reason[1:])
        box.setParent(self.window, box.windowFlags())
        box.setObjectName(TRUST_QUESTION_NAME)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setInformativeText(
            f"Loading {path.name} runs code from it. Trust it only if you know where it comes from. "
            "Your decision is remembered for this exact file."
        )
        box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.finished.connect(lambda result: self._answered(result, path, weights))
        box.open()

    def _answered(self, result: int, path: Path, weights: Path | None) -> None:
        if result == QMessageBox.StandardButton.Yes:
            self.controller.import_model(path, weights=weights, trust=True)
