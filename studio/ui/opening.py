"""Opening things: model files (asking for weights and for trust where needed), project folders,
shared ``.studio`` projects, the demo, and whatever is dropped on the window.

A model opened with no project open goes into the data folder's "models" project, so that a
person can look at a file without first deciding where a project should live.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox, QWidget

from studio.core.files import DATABASE_NAME

BUNDLE_SUFFIX = ".studio"  # studio.bundle.BUNDLE_SUFFIX
MODEL_FILTER = "Models (*.onnx *.pt *.pth *.pt2 *.py);;All files (*)"
BUNDLE_FILTER = "Shared projects (*.studio);;All files (*)"
WEIGHTS_FILTER = "Weights (*.safetensors *.pt *.pth *.bin);;All files (*)"
TRUST_QUESTION_NAME = "studioTrustQuestion"
UNPACK_QUESTION_NAME = "studioUnpackQuestion"
LEAVE_QUESTION_NAME = "studioLeaveQuestion"
INPUT_VALUE_QUESTION_NAME = "studioInputValueQuestion"

Request = tuple[Path, Path | None]  # (model file, weights file for an architecture)


class Opener(QObject):
    """Turns "open this" into controller commands; ``window`` is the dialogs' parent."""

    def __init__(self, window: QWidget, controller, settings) -> None:
        super().__init__(window)
        self.window, self.controller, self.settings = window, controller, settings
        self._pending: Request | None = None  # to import once the "models" project is open
        self._last: Request | None = None  # the latest request, for a trust question about it
        self._roles: dict[str, str] = {}  # input values the user gave for the latest request
        controller.project_opened.connect(self._import_pending)
        controller.model_imported.connect(self._remember)

    def open_model(self, path: Path, weights: Path | None = None) -> None:
        request = (Path(path), None if weights is None else Path(weights))
        self._last, self._roles = request, {}
        if self.controller.session is None:
            self._pending = request
            self.controller.open_project(self.settings.data_folder / "projects" / "models", create=True)
        else:
            self.controller.import_model(request[0], weights=request[1])

    def _remember(self, _version) -> None:
        """Recent Models gets a file once it opened: one that failed is not offered again."""
        if self._last is not None:
            self.settings.add_recent("models", self._last[0])

    def open_project(self, path: Path, *, create: bool = False) -> None:
        self._leave_current(Path(path), lambda: self.controller.open_project(Path(path), create=create))

    def open_path(self, path: Path) -> None:
        """A project folder or a shared project is opened; anything else is imported as a model."""
        path = Path(path)
        if path.is_dir() and (path / DATABASE_NAME).is_file():
            self.open_project(path)
        elif path.suffix.lower() == BUNDLE_SUFFIX and path.is_file():
            self.open_bundle(path)
        else:
            self.open_model(path)

    def open_bundle(self, bundle: Path) -> None:
        """A shared project becomes a project folder before it opens: the user sees where it will
        go and may choose another folder. The same file opened again opens that folder."""
        earlier = self.settings.unpacked_copy(bundle)
        if earlier is not None:
            self.open_project(earlier)
            return
        self._leave_current(None, lambda: self._ask_unpack(bundle))

    def _ask_unpack(self, bundle: Path) -> None:
        from studio.bundle import default_unpack_folder

        target = default_unpack_folder(bundle, self.settings.data_folder / "projects")
        box = QMessageBox(QMessageBox.Icon.Question, "Open shared project", f"Open {bundle.name}?")
        box.setParent(self.window, box.windowFlags())
        box.setObjectName(UNPACK_QUESTION_NAME)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setInformativeText(
            "The studio checks the whole file, then unpacks it into a new project folder:\n"
            f"{target}\n\nNothing in it runs: its models that carry code (architecture files, pickled "
            "modules, TorchScript, .pt2 files with native code) stay untrusted until you trust them."
        )
        unpack = box.addButton("Unpack and Open", QMessageBox.ButtonRole.AcceptRole)
        choose = box.addButton("Choose Folder…", QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(unpack)
        box.finished.connect(
            lambda _r: self._unpack_answered(box.clickedButton(), unpack, choose, bundle, target)
        )
        box.open()

    def _unpack_answered(self, clicked, unpack, choose, bundle: Path, target: Path) -> None:
        if clicked is choose:
            folder = QFileDialog.getExistingDirectory(
                self.window, "Unpack into a new or empty folder", str(target.parent)
            )
            if not folder:
                return
            target = Path(folder)
        elif clicked is not unpack:
            return
        self.controller.unpack_and_open(
            bundle, target, on_unpacked=lambda folder: self.settings.remember_unpacked(bundle, folder)
        )

    def open_demo(self, folder: Path | None = None) -> None:
        target = Path(folder) if folder else self.settings.data_folder / "projects" / "digits-demo"
        self._leave_current(target, lambda: self.controller.run_demo(target))

    def _leave_current(self, target: Path | None, then) -> None:
        """Run ``then``, which opens another project; first ask when that would stop running jobs
        (they would be recorded as interrupted). ``target`` None: a project not yet on disk."""
        active = self.controller.active_jobs()
        if not active or (target is not None and self.controller.is_open(target)):
            then()
            return
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Jobs are running",
            f"{len(active)} job(s) of {self.controller.session.root.name} are still queued or running.",
        )
        box.setParent(self.window, box.windowFlags())
        box.setObjectName(LEAVE_QUESTION_NAME)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setInformativeText(
            "Opening another project stops them; they are recorded as interrupted and can be run again."
        )
        leave = box.addButton("Stop Jobs and Open", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.finished.connect(lambda _r: then() if box.clickedButton() is leave else None)
        box.open()

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

    def bundle_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open shared project", "", BUNDLE_FILTER)
        if path:
            self.open_bundle(Path(path))

    def share_dialog(self) -> None:
        """Save the open project as one ``.studio`` file for a colleague."""
        session = self.controller.session
        if session is None:
            return
        suggested = str(session.root.parent / f"{session.root.name}{BUNDLE_SUFFIX}")
        path, _ = QFileDialog.getSaveFileName(
            self.window, "Share project as one file", suggested, BUNDLE_FILTER
        )
        if path:
            out = Path(path) if path.endswith(BUNDLE_SUFFIX) else Path(path + BUNDLE_SUFFIX)
            self.controller.pack_project(out)

    def project_dialog(self, *, create: bool = False) -> None:
        title = "New project: choose an empty folder" if create else "Open project folder"
        path = QFileDialog.getExistingDirectory(self.window, title)
        if path:
            self.open_project(Path(path), create=create)

    # -- trust ------------------------------------------------------------------------------------

    def handle_untrusted(self, error: BaseException, version_id: int | None = None) -> bool:
        """Ask whether to trust the file ``error`` is about: the model being imported, or else the
        files of version ``version_id`` (one from a shared project, say). True when it asked."""
        from studio.api import UntrustedFileError

        if not isinstance(error, UntrustedFileError):
            return False
        if (
            self._last is not None
            and error.path is not None
            and error.path.name in {p.name for p in self._last if p is not None}
        ):
            path, weights = self._last
            self._ask_trust(error, lambda: self._import_last(trust=True))
            return True
        if version_id is not None:
            self.ask_trust_version(version_id, error)
            return True
        return False

    def _import_last(self, *, trust: bool = False) -> None:
        path, weights = self._last
        self.controller.import_model(
            path, weights=weights, trust=trust, input_roles=dict(self._roles) or None
        )

    # -- an input's value -------------------------------------------------------------------------

    def handle_input_value(self, error: BaseException) -> bool:
        """Ask for the value of a single-number input (a sample rate) the model being imported
        takes, then import it again with that value. True when it asked."""
        from studio.core.input_roles import InputValueNeeded

        if not isinstance(error, InputValueNeeded) or self._last is None:
            return False
        name = error.input_name
        dialog = QInputDialog(self.window)
        dialog.setObjectName(INPUT_VALUE_QUESTION_NAME)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.setWindowTitle("Value of an input")
        dialog.setLabelText(
            f"{self._last[0].name} takes '{name}', a single number the same for every sample "
            "(a sample rate, say). What value does it take?"
        )
        dialog.textValueSelected.connect(lambda text: self._set_input_value(name, text))
        dialog.open()
        return True

    def _set_input_value(self, name: str, text: str) -> None:
        from studio.api import StudioError
        from studio.core.input_roles import checked_role
        from studio.ui.widgets.errors import show_error

        try:
            self._roles[name] = checked_role(name, text.strip())
        except StudioError as error:
            show_error(self.window, error)
            return
        self._import_last()

    def ask_trust_version(self, version_id: int, error: BaseException) -> None:
        self._ask_trust(error, lambda: self.controller.trust_version(version_id))

    def _ask_trust(self, error: BaseException, on_yes) -> None:
        from studio.ui.widgets.errors import sentence_case

        reason = getattr(error, "reason", None) or str(error)
        path = getattr(error, "path", None)
        box = QMessageBox(QMessageBox.Icon.Question, "Trust this file?", sentence_case(reason) + ".")
        box.setParent(self.window, box.windowFlags())
        box.setObjectName(TRUST_QUESTION_NAME)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setInformativeText(
            f"Loading {path.name if path else 'it'} runs code from it. Trust it only if you know where it "
            "comes from. Your decision is remembered for this exact file on this machine."
        )
        box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.finished.connect(lambda result: on_yes() if result == QMessageBox.StandardButton.Yes else None)
        box.open()
