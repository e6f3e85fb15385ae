"""Pick a technique, fill its generated form, a dataset and a device, and queue it with Run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QSize, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.ui.widgets.technique_form import TechniqueForm, model_defaults

_BROWSE_FILE = "__browse_file__"
_BROWSE_FOLDER = "__browse_folder__"


class DatasetPicker(QComboBox):
    """No dataset, the shipped digits sample, the project's datasets, or a file or folder."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("datasetPicker")
        self._last = 0
        self.known: list[str] = []
        self.set_sources([])
        self.activated.connect(self._on_activated)

    def set_sources(self, sources: Sequence[tuple[str, str]]) -> None:
        """``sources``: (label, source) pairs the project already knows."""
        current = self.source()
        self.known = [source for _, source in sources]
        self.blockSignals(True)
        self.clear()
        self.addItem("No dataset", "")
        self.addItem("digits (shipped sample)", "digits")
        for label, source in sources:
            if source != "digits" and self.findData(source) < 0:
                self.addItem(label, source)
        self.addItem("Choose a file (.npz, .csv)…", _BROWSE_FILE)
        self.addItem("Choose an image folder…", _BROWSE_FOLDER)
        self.blockSignals(False)
        self.set_source(current)

    def source(self) -> str:
        data = self.currentData()
        return "" if data in (None, _BROWSE_FILE, _BROWSE_FOLDER) else data

    def set_source(self, source: str | None) -> None:
        source = source or ""
        index = self.findData(source)
        if index < 0:
            self.insertItem(self.count() - 2, source, source)
            index = self.findData(source)
        self.setCurrentIndex(index)
        self._last = index

    def _on_activated(self, index: int) -> None:
        data = self.itemData(index)
        if data == _BROWSE_FILE:
            path, _ = QFileDialog.getOpenFileName(
                self, "Dataset", "", "Datasets (*.npz *.csv);;All files (*)"
            )
        elif data == _BROWSE_FOLDER:
            path = QFileDialog.getExistingDirectory(self, "Image folder (one sub-folder per class)")
        else:
            self._last = index
            return
        if path:
            self.set_source(path)
        else:
            self.setCurrentIndex(self._last)


class OptimizePanel(QWidget):
    """Emits ``run_requested(technique, params, dataset, device, threads, name)``."""

    run_requested = Signal(str, dict, str, str, int, str)
    add_to_recipe = Signal(str, dict)

    def sizeHint(self) -> QSize:  # the first layout's size, before one is remembered
        return QSize(380, 640)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._entries: dict[str, Any] = {}
        self._target_label: str | None = None
        self.target = QLabel("Select a version in the lineage tree.")
        self.target.setWordWrap(True)
        self.technique = QComboBox()
        self.technique.setObjectName("techniquePicker")
        self.technique.currentIndexChanged.connect(self._on_technique)
        self.help = QLabel()
        self.help.setWordWrap(True)
        self.form = TechniqueForm()
        self.dataset = DatasetPicker()
        self.device = QComboBox()
        self.device.setObjectName("devicePicker")
        self.device.addItem("cpu")
        self.threads = QSpinBox()
        self.threads.setRange(0, 256)
        self.threads.setSpecialValueText("automatic")
        self.name = QLineEdit()
        self.name.setPlaceholderText("automatic")
        self.run_button = QPushButton("Run")
        self.run_button.setObjectName("runButton")
        self.run_button.setDefault(True)
        self.run_button.setEnabled(False)
        self.run_button.clicked.connect(self._run)
        self.recipe_button = QPushButton("Add to recipe")
        self.recipe_button.clicked.connect(
            lambda: self.add_to_recipe.emit(self.technique.currentData() or "", self.form.values())
        )
        self._build_layout()

    def _build_layout(self) -> None:
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.form)
        common = QFormLayout()
        common.addRow("Technique", self.technique)
        common.addRow(self.help)
        settings = QFormLayout()
        settings.addRow("Dataset", self.dataset)
        settings.addRow("Device", self.device)
        settings.addRow("Threads", self.threads)
        settings.addRow("New version name", self.name)
        buttons = QHBoxLayout()
        buttons.addWidget(self.recipe_button)
        buttons.addStretch(1)
        buttons.addWidget(self.run_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.target)
        layout.addLayout(common)
        layout.addWidget(scroll, 1)
        layout.addLayout(settings)
        layout.addLayout(buttons)

    def set_entries(self, entries: Sequence[Any]) -> None:
        """``entries``: ``PluginEntry`` values; broken plugins are listed, disabled, with their error."""
        self._entries = {e.name: e for e in entries}
        self.technique.blockSignals(True)
        self.technique.clear()
        for e in entries:
            title = e.technique.title if e.technique else f"{e.name} (could not be loaded)"
            self.technique.addItem(f"{title} — {e.name}" if e.technique else title, e.name)
            if e.technique is None:
                item = self.technique.model().item(self.technique.count() - 1)
                item.setEnabled(False)
                item.setToolTip(e.error or "")
        self.technique.blockSignals(False)
        self.set_technique("quantize.static" if "quantize.static" in self._entries else None)
        self.set_target(self._target_label)

    def set_technique(self, name: str | None) -> None:
        index = self.technique.findData(name) if name else -1
        self.technique.setCurrentIndex(index if index >= 0 else 0)
        self._on_technique()

    def set_dataset_sources(self, sources: Sequence[tuple[str, str]]) -> None:
        """The project's datasets; one is preselected when the technique needs data and none is chosen."""
        self.dataset.set_sources(sources)
        self._preselect_dataset()

    def _preselect_dataset(self) -> None:
        entry = self._entries.get(self.technique.currentData())
        needs = (
            entry is not None
            and entry.technique is not None
            and entry.technique.dataset in ("inputs", "labels")
        )
        if needs and not self.dataset.source() and self.dataset.known:
            self.dataset.set_source(self.dataset.known[0])  # the project's own data, not a guess

    def set_devices(self, devices: Sequence[str], default: str = "cpu") -> None:
        self.device.clear()
        self.device.addItems(list(devices))
        self.device.setCurrentIndex(max(0, self.device.findText(default)))

    def set_target(self, label: str | None) -> None:
        self._target_label = label
        self.target.setText(f"Optimize <b>{label}</b>" if label else "Select a version in the lineage tree.")
        self.run_button.setEnabled(label is not None and bool(self._entries))

    def _on_technique(self, *_args) -> None:
        entry = self._entries.get(self.technique.currentData())
        if entry is None or entry.technique is None:
            self.form.set_schema({})
            self.help.setText("")
            return
        tech = entry.technique
        self.form.set_schema(tech.Params.model_json_schema(), model_defaults(tech.Params))
        needs = {"inputs": "Needs a dataset.", "labels": "Needs a labelled dataset."}.get(tech.dataset, "")
        self.help.setText(f"{tech.help} {needs}".strip())
        self._preselect_dataset()

    def _run(self) -> None:
        self.run_requested.emit(
            self.technique.currentData() or "",
            self.form.values(),
            self.dataset.source(),
            self.device.currentText() or "cpu",
            self.threads.value(),
            self.name.text().strip(),
        )
