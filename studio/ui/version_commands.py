"""What a user does to one version from the lineage: its context menu and the commands behind it.

Export, report, compare with its parent, measure again, rename, copy its path and delete: each
is also in the Model menu for the current version, and each is a command line verb too
(`studio export`, `studio report`, `studio bench`, `studio versions rename|delete`). The work
runs in the controller, off the UI thread; this module asks the questions and shows the answers.
Dialogs open window-modal with ``open()``, never a nested event loop, so jobs keep being shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QPoint, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMainWindow, QMenu, QMessageBox

from studio.ui.models.lineage_model import VERSION_ID_ROLE
from studio.ui.widgets.errors import error_sentence, show_info

if TYPE_CHECKING:
    from studio.ui.models.figures import VersionFigures

MENU_NAME = "versionMenu"


class VersionCommands(QObject):
    """The lineage's context menu, and the version commands the window's menus name."""

    def __init__(self, window: QMainWindow) -> None:
        """``window`` is the studio's main window: its parts, controller and version commands."""
        super().__init__(window)
        self.window = window
        self.menu: QMenu | None = None  # the one open now, for whoever wants to look at it
        self._parents: dict[int, int | None] = {}  # versions being deleted: where the selection goes
        view = window.parts.lineage.view
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        view.customContextMenuRequested.connect(self._on_menu_requested)
        view.installEventFilter(self)  # Delete and F2 on the tree act on its current version
        controller = window.controller
        controller.exported.connect(self._on_exported)
        controller.report_written.connect(self._on_report)
        controller.version_deleted.connect(self._on_deleted)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.KeyPress and event.modifiers() == Qt.KeyboardModifier.NoModifier:
            command = {Qt.Key.Key_Delete: self.delete, Qt.Key.Key_F2: self.rename}.get(event.key())
            if command is not None:
                command(self.window.parts.lineage.current_id())
                return True
        return super().eventFilter(watched, event)

    # -- the menu ---------------------------------------------------------------------------------

    def _on_menu_requested(self, pos: QPoint) -> None:
        lineage = self.window.parts.lineage
        index = lineage.view.indexAt(pos)
        if not index.isValid():
            return
        version_id = index.siblingAtColumn(0).data(VERSION_ID_ROLE)
        if version_id not in lineage.selected_ids():
            lineage.select(version_id)
        self.show_menu(version_id, lineage.view.viewport().mapToGlobal(pos))

    def show_menu(self, version_id: int, where: QPoint) -> QMenu:
        fig = self._figures(version_id)
        menu = QMenu(self.window)
        menu.setObjectName(MENU_NAME)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        entries = (
            ("Export…", lambda: self.export(version_id), True),
            (
                "Compare with Parent",
                lambda: self.compare_with_parent(version_id),
                fig is not None and not fig.is_root,
            ),
            ("Measure Again", lambda: self.measure(version_id), True),
            (None, None, True),
            ("Rename…", lambda: self.rename(version_id), True),
            ("Copy File Path", lambda: self.copy_path(version_id), True),
            ("Write Project Report…", lambda: self.report(), True),
            (None, None, True),
            ("Delete…", lambda: self.delete(version_id), True),
        )
        for text, command, enabled in entries:
            if text is None:
                menu.addSeparator()
                continue
            action = menu.addAction(text)
            action.setObjectName("version_" + text.rstrip("…").lower().replace(" ", "_"))
            action.setEnabled(enabled)
            action.triggered.connect(command)
        if fig is not None and fig.is_root:
            menu.actions()[1].setToolTip("An imported model has no parent")
        self.menu = menu
        menu.popup(where)
        return menu

    # -- the commands ---------------------------------------------------------------------------------

    def export(self, version_id: int | None) -> None:
        """The dialog opens once the default file is known: naming it loads the exporters (about a
        second), which happens off the UI thread."""
        session, controller = self.window.controller.session, self.window.controller
        if version_id is None or session is None:
            return
        project = session.project

        def default_stem() -> tuple:
            from studio.export import EXPORTS_DIR, safe_file_stem

            version = project.store.get_version(version_id)
            return version, project.root / EXPORTS_DIR / safe_file_stem(version)

        controller.background.run(
            default_stem, lambda found: self._ask_export(*found), self.window.show_failure
        )

    def _ask_export(self, version, stem: Path) -> None:
        from studio.ui.widgets.export_dialog import ExportDialog

        controller = self.window.controller
        dialog = ExportDialog(f"v{version.id} {version.name}", stem, self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def accepted() -> None:
            fmt, out, options = dialog.request()
            controller.export_version(version.id, fmt, out, **options)

        dialog.accepted.connect(accepted)
        dialog.open()

    def _on_exported(self, summary: str) -> None:
        first = summary.splitlines()[0] if summary else ""
        self.window.statusBar().showMessage(first, 10000)
        box = show_info(self.window, summary, title="Export")
        box.setObjectName("exportResult")

    def report(self) -> None:
        session = self.window.controller.session
        if session is None:
            return
        dialog = QFileDialog(
            self.window, "Write project report", str(session.root / "report.html"), "HTML pages (*.html)"
        )
        dialog.setObjectName("reportFileDialog")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog)  # the same dialog everywhere
        dialog.setDefaultSuffix("html")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(lambda path: self.window.controller.write_report(Path(path)))
        dialog.open()

    def _on_report(self, result) -> None:
        from PySide6.QtCore import QUrl
        from PySide6.QtGui import QDesktopServices

        box = QMessageBox(self.window)
        box.setObjectName("reportResult")
        box.setIcon(QMessageBox.Icon.Information)
        box.setWindowTitle("Report")
        box.setText(f"Wrote {result.html} ({result.versions} versions, {result.measurements} measurements).")
        open_button = box.addButton("Open in Browser", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Close)
        open_button.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(result.html))))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def compare_with_parent(self, version_id: int | None) -> None:
        fig = self._figures(version_id)
        if fig is None or fig.parent_id is None:
            return
        lineage = self.window.parts.lineage
        lineage.select(fig.parent_id)
        lineage.select(version_id, add=True)
        self.window.compare_selected()

    def measure(self, version_id: int | None) -> None:
        if version_id is not None:
            dataset = self.window.parts.optimize.dataset.source()
            self.window.controller.submit_measure(version_id, dataset)
            self.window.parts.docks["jobs"].raise_()

    def rename(self, version_id: int | None) -> None:
        fig = self._figures(version_id)
        if fig is None:
            return
        dialog = QInputDialog(self.window)
        dialog.setObjectName("renameDialog")
        dialog.setWindowTitle("Rename version")
        dialog.setLabelText(f"New name for v{fig.id}:")
        dialog.setTextValue(fig.name)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.textValueSelected.connect(
            lambda name: (
                self.window.controller.rename_version(fig.id, name) if name.strip() != fig.name else None
            )
        )
        dialog.open()

    def copy_path(self, version_id: int | None) -> None:
        path = None if version_id is None else self.window.controller.version_file(version_id)
        if path is not None:
            QGuiApplication.clipboard().setText(str(path))
            self.window.statusBar().showMessage(f"Copied {path}", 6000)

    def delete(self, version_id: int | None) -> None:
        """Ask first: deleting cannot be undone. The project says what would go, or why it refuses
        (another version was made from it, compared against it, or a job uses it)."""
        session = self.window.controller.session
        if version_id is None or session is None:
            return
        project = session.project
        self.window.controller.background.run(
            lambda: project.preview_delete_version(version_id), self._confirm_delete, self._refused
        )

    def _refused(self, failure) -> None:
        from studio.api import StudioError

        if not isinstance(failure.error, StudioError):
            self.window.show_failure(failure)
            return
        box = self._delete_box()
        box.setText(error_sentence(failure.error))
        box.setStandardButtons(QMessageBox.StandardButton.Close)
        box.open()

    def _confirm_delete(self, preview) -> None:
        from studio.tables import human_bytes

        box = self._delete_box()
        box.setText(f"Delete v{preview.id} {preview.name}?")
        count = preview.measurements_removed
        measured = f"{count} measurement{'s' if count != 1 else ''} and its " if count else ""
        if preview.artifact_removed:
            files = f"model files ({human_bytes(preview.bytes_freed)}) go with it"
        else:
            files = "model files stay: " + ", ".join(f"v{i}" for i in preview.shared_with) + " uses them"
        box.setInformativeText(f"Its {measured}{files}. This cannot be undone.")
        delete = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(box.addButton(QMessageBox.StandardButton.Cancel))
        parent = self._figures(preview.id)
        delete.clicked.connect(lambda: self._delete(preview.id, parent.parent_id if parent else None))
        box.open()

    def _delete_box(self) -> QMessageBox:
        box = QMessageBox(self.window)
        box.setObjectName("deleteVersionDialog")
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Delete version")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        return box

    def _delete(self, version_id: int, parent_id: int | None) -> None:
        self._parents[version_id] = parent_id
        self.window.controller.delete_version(version_id)

    def _on_deleted(self, result) -> None:
        """The parent of a deleted version becomes the one shown, if it was the one shown."""
        self.window.statusBar().showMessage(f"Deleted v{result.id} {result.name}", 8000)
        lineage, figures = self.window.parts.lineage, self.window.controller.figures
        parent = self._parents.pop(result.id, None)
        if self.window.current_version == result.id or lineage.current_id() is None:
            self.window.current_version = None
            if not (parent is not None and lineage.select(parent)) and figures:
                lineage.select(figures[0].id)

    def _figures(self, version_id: int | None) -> VersionFigures | None:
        return next((f for f in self.window.controller.figures if f.id == version_id), None)
