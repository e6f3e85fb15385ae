"""Menus, toolbar entries and shortcuts as data, kept out of the window class.

Each declaration names the window method it runs; ``build_actions`` turns the list into
QActions, menus and a toolbar. Adding a command is one line here and one method on the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QStyle, QToolBar

Key = QKeySequence.StandardKey
Icon = QStyle.StandardPixmap


@dataclass(frozen=True)
class ActionSpec:
    id: str
    text: str
    menu: str
    command: str  # the window method it calls
    shortcut: str | Key | None = None
    icon: Icon | None = None
    toolbar: bool = False
    tip: str = ""
    needs: str = ""  # "project" or "version": disabled until there is one


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("open_model", "&Open Model…", "&File", "open_model_dialog", Key.Open, Icon.SP_DialogOpenButton, True,
               "Import an ONNX or PyTorch model into the project"),
    ActionSpec("open_project", "Open &Project…", "&File", "open_project_dialog", "Ctrl+Shift+O", Icon.SP_DirOpenIcon,
               True, "Open a project folder"),
    ActionSpec("new_project", "&New Project…", "&File", "new_project_dialog", Key.New, Icon.SP_FileDialogNewFolder),
    ActionSpec("open_shared", "Open S&hared Project…", "&File", "open_shared_dialog", None, None, False,
               "Open a .studio file a colleague sent: checked, then unpacked into a new project folder"),
    ActionSpec("share_project", "&Share Project as File…", "&File", "share_project_dialog", None, None, False,
               "Save the whole project as one .studio file to send", "project"),
    ActionSpec("report", "Write &Report…", "&File", "write_report", None, None, False,
               "One self-contained HTML page of the project's versions, measurements and charts", "project"),
    ActionSpec("open_demo", "Open the &Demo Project", "&File", "open_demo", None, Icon.SP_MediaPlay, False,
               "The shipped digits CNN, imported and measured, ready to optimize"),
    ActionSpec("settings", "&Settings…", "&File", "open_settings", "Ctrl+,", None),
    ActionSpec("quit", "&Quit", "&File", "close", Key.Quit, None),
    ActionSpec("run", "&Run Technique", "&Model", "run_technique", "Ctrl+Return", Icon.SP_MediaPlay, True,
               "Queue the technique in the Optimize panel on the selected version", "version"),
    ActionSpec("measure", "&Measure", "&Model", "measure_selected", "Ctrl+M", Icon.SP_BrowserReload, True,
               "Measure accuracy, size and latency of the selected version", "version"),
    ActionSpec("compare", "&Compare Selected", "&Model", "compare_selected", "Ctrl+Shift+C", Icon.SP_FileDialogDetailedView,
               True, "Compare the versions selected in the lineage tree", "project"),
    ActionSpec("compare_parent", "Compare with &Parent", "&Model", "compare_with_parent", None, None, False,
               "Compare the selected version with the version it was made from", "version"),
    ActionSpec("export", "&Export…", "&Model", "export_selected", "Ctrl+E", Icon.SP_DialogSaveButton, True,
               "Write the selected version as an ONNX file or a TensorRT engine", "version"),
    ActionSpec("rename", "Re&name Version…", "&Model", "rename_selected", None, None, False,
               "Give the selected version another name (F2 in the lineage)", "version"),
    ActionSpec("copy_path", "Copy &File Path", "&Model", "copy_selected_path", None, None, False,
               "Copy the path of the selected version's model file", "version"),
    ActionSpec("delete", "&Delete Version…", "&Model", "delete_selected", None, None, False,
               "Delete the selected version, its measurements and files (Delete in the lineage)", "version"),
    ActionSpec("cancel_job", "Cancel &Job", "&Model", "cancel_selected_job", "Ctrl+.", Icon.SP_BrowserStop, False,
               "Cancel the job selected in the Jobs panel", "project"),
    ActionSpec("show_graph", "&Graph", "&View", "show_graph_tab", "Ctrl+1"),
    ActionSpec("show_charts", "&Charts", "&View", "show_charts_tab", "Ctrl+2"),
    ActionSpec("show_compare", "C&ompare", "&View", "show_compare_tab", "Ctrl+3"),
    ActionSpec("find_layer", "&Find Layer", "&View", "focus_layer_filter", Key.Find),
    ActionSpec("reset_layout", "&Reset Layout", "&View", "reset_layout"),
    ActionSpec("about", "&About", "&Help", "show_about"),
)  # fmt: skip


def build_actions(window: QMainWindow, specs: Sequence[ActionSpec] = ACTIONS) -> dict[str, QAction]:
    """QActions for ``specs``, added to the window's menus (in order) and a main toolbar."""
    actions: dict[str, QAction] = {}
    menus: dict[str, QMenu] = {}
    toolbar = QToolBar("Main", window)
    toolbar.setObjectName("mainToolbar")
    window.addToolBar(toolbar)
    style = window.style()
    for spec in specs:
        action = QAction(spec.text, window)
        action.setObjectName(f"action_{spec.id}")
        if spec.shortcut is not None:
            action.setShortcut(QKeySequence(spec.shortcut))
        if spec.icon is not None:
            action.setIcon(style.standardIcon(spec.icon))
        tip = spec.tip or spec.text.replace("&", "").rstrip("…")
        shortcut = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        action.setToolTip(f"{tip} ({shortcut})" if shortcut else tip)
        action.setStatusTip(tip)
        action.setProperty("needs", spec.needs)
        action.triggered.connect(lambda _checked=False, name=spec.command: getattr(window, name)())
        menu = menus.get(spec.menu) or menus.setdefault(spec.menu, window.menuBar().addMenu(spec.menu))
        menu.addAction(action)
        if spec.toolbar:
            toolbar.addAction(action)
        actions[spec.id] = action
    return actions


def add_panel_toggles(window: QMainWindow, docks: Sequence) -> None:
    """Every dock's show/hide action at the end of the View menu: a panel closed with its × comes
    back from there (Reset Layout brings back all of them, in their first places)."""
    view = next(
        (a.menu() for a in window.menuBar().actions() if a.menu() is not None and a.text() == "&View"),
        None,
    ) or window.menuBar().addMenu("&View")
    view.addSeparator()
    for dock in docks:
        toggle = dock.toggleViewAction()
        toggle.setStatusTip(f"Show or hide the {dock.windowTitle()} panel")
        view.addAction(toggle)


def update_enabled(actions: dict[str, QAction], *, project: bool, version: bool) -> None:
    for action in actions.values():
        needs = action.property("needs")
        action.setEnabled(
            needs == "" or (needs == "project" and project) or (needs == "version" and project and version)
        )
