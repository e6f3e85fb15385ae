"""The File menu's recent projects and models, rebuilt whenever the lists change."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMainWindow, QMenu

_TITLES = {"projects": "Recent &Projects", "models": "Recent &Models"}


def rebuild_recent_menus(window: QMainWindow) -> None:
    file_menu = _file_menu(window)
    if file_menu is None:
        return
    anchor = next((a for a in file_menu.actions() if a.objectName() == "action_settings"), None)
    for kind, title in _TITLES.items():
        menu = file_menu.findChild(QMenu, f"recent_{kind}")
        if menu is None:
            menu = QMenu(title, file_menu)
            menu.setObjectName(f"recent_{kind}")
            if anchor is not None:
                file_menu.insertMenu(anchor, menu)
            else:
                file_menu.addMenu(menu)
        menu.clear()
        paths = window.settings.recent(kind)
        for path in paths:
            action = menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.setStatusTip(path)
            action.triggered.connect(lambda _c=False, p=Path(path): window.open_path(p))
        menu.setEnabled(bool(paths))


def _file_menu(window: QMainWindow) -> QMenu | None:
    for action in window.menuBar().actions():
        if action.menu() is not None and action.text().replace("&", "") == "File":
            return action.menu()
    return None
