"""Preferences: workers, executor, default device, threads, theme and the data folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.ui.pool import device_choices
from studio.ui.settings import THEMES, StudioSettings
from studio.ui.widgets.optimize_panel import ElidedComboBox


class SettingsDialog(QDialog):
    def __init__(
        self, settings: StudioSettings, gpus: Sequence[dict | str] = (), parent: QWidget | None = None
    ) -> None:
        """``gpus`` as ``hardware.cuda_devices()`` lists them: the default device may be one."""
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setObjectName("settingsDialog")
        self.settings = settings
        self.workers = QSpinBox()
        self.workers.setRange(0, 64)
        self.workers.setSpecialValueText("automatic")
        self.workers.setValue(settings.cpu_workers)
        self.executor = QLineEdit(settings.executor)
        self.executor.setPlaceholderText("local, or ray://host:port")
        self.device = ElidedComboBox(min_chars=36)  # a GPU's full name would widen the whole dialog
        self.device.setObjectName("defaultDevicePicker")
        gpus = [gpu for gpu in gpus if isinstance(gpu, dict)]  # plain names ("cpu") add nothing
        for label, value in device_choices(gpus):
            self.device.addItem(label, value)
        if self.device.findData(settings.default_device) < 0:  # a GPU this machine lacks: kept
            self.device.addItem(settings.default_device, settings.default_device)
        self.device.setCurrentIndex(self.device.findData(settings.default_device))
        self.threads = QSpinBox()
        self.threads.setRange(0, 256)
        self.threads.setSpecialValueText("automatic")
        self.threads.setValue(settings.threads)
        self.theme = QComboBox()
        for theme in THEMES:
            self.theme.addItem("follow the desktop" if theme == "system" else theme, theme)
        self.theme.setCurrentIndex(max(0, self.theme.findData(settings.theme)))
        self.folder = QLineEdit(str(settings.data_folder))
        self.folder.setMinimumWidth(36 * self.folder.fontMetrics().averageCharWidth())  # a path, not its tail
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._choose_folder)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(browse)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("CPU workers", self.workers)
        form.addRow("Executor", self.executor)
        form.addRow("Default device", self.device)
        form.addRow("Threads per job", self.threads)
        form.addRow("Theme", self.theme)
        form.addRow("Data folder", folder_row)
        note = QLabel("Worker and executor changes apply to the next project opened.")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(buttons)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Data folder", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def accept(self) -> None:
        s = self.settings
        s.cpu_workers = self.workers.value()
        s.executor = self.executor.text()
        s.default_device = self.device.currentData()
        s.threads = self.threads.value()
        s.theme = self.theme.currentData()
        s.data_folder = Path(self.folder.text()).expanduser()
        s.sync()
        super().accept()
