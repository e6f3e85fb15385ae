"""What the window shows before a project is open: the demo first on a first run, then recent projects."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


class WelcomePage(QWidget):
    demo_requested = Signal()
    open_project_requested = Signal()
    open_model_requested = Signal()
    recent_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcomePage")
        title = QLabel("<h1>Model Optimization Studio</h1>")
        self.intro = QLabel(
            "Open a trained model (ONNX or PyTorch), make it smaller and faster with quantization, "
            "pruning and distillation, and compare every version on accuracy, size and latency."
        )
        self.intro.setWordWrap(True)
        self.demo_button = QPushButton("Try the demo project")
        self.demo_button.setObjectName("demoButton")
        self.demo_button.setToolTip("A small digits CNN, imported and measured, ready to optimize")
        self.demo_button.clicked.connect(self.demo_requested)
        project = QPushButton("Open project…")
        project.clicked.connect(self.open_project_requested)
        model = QPushButton("Open model…")
        model.clicked.connect(self.open_model_requested)
        buttons = QGridLayout()
        for button in (self.demo_button, project, model):
            button.setMinimumHeight(36)
        buttons.addWidget(self.demo_button, 0, 0, 1, 2)
        buttons.addWidget(project, 1, 0)
        buttons.addWidget(model, 1, 1)
        self.recent_title = QLabel("<b>Recent projects</b>")
        self.recent = QListWidget()
        self.recent.setObjectName("recentProjects")
        # A long path is shortened in its middle (its tooltip holds all of it), not scrolled sideways.
        self.recent.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.recent.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.recent.itemActivated.connect(
            lambda item: self.recent_requested.emit(item.data(Qt.ItemDataRole.UserRole))
        )
        self.hint = QLabel("You can also drop a model file or a project folder onto this window.")
        self.hint.setWordWrap(True)
        # Centred as one block: without recent projects the free height goes above and below it,
        # not between the title, the buttons and the hint; with them, mostly to their list.
        column = QVBoxLayout()
        column.addStretch(1)
        column.addWidget(title)
        column.addWidget(self.intro)
        column.addSpacing(12)
        column.addLayout(buttons)
        column.addSpacing(12)
        column.addWidget(self.recent_title)
        column.addWidget(self.recent, 6)
        column.addWidget(self.hint)
        column.addStretch(1)
        holder = QWidget()
        holder.setMaximumWidth(720)
        holder.setLayout(column)
        outer = QHBoxLayout(self)
        outer.addStretch(1)
        outer.addWidget(holder, 4)
        outer.addStretch(1)

    def set_state(self, recent: Sequence[str], first_run: bool) -> None:
        self.recent.clear()
        for path in recent:
            item = QListWidgetItem(f"{Path(path).name}    —    {path}")
            item.setData(Qt.ItemDataRole.UserRole, path)
            item.setToolTip(path)  # the list cuts a long path short
            self.recent.addItem(item)
        self.recent_title.setVisible(bool(recent))
        self.recent.setVisible(bool(recent))
        self.demo_button.setDefault(first_run or not recent)
        if first_run:
            self.demo_button.setText("Start with the demo project (recommended for a first run)")
        else:
            self.demo_button.setText("Try the demo project")
