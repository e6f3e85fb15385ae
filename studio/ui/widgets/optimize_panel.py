"""Pick a technique, fill its generated form, a dataset and a device, and queue it with Run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QEvent, QSize, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QStyle,
    QStyleOptionComboBox,
    QStylePainter,
    QVBoxLayout,
    QWidget,
)

from studio.ui.pool import ALL_GPUS, AUTO, device_choices
from studio.ui.widgets.technique_form import TechniqueForm, model_defaults

_BROWSE_FILE = "__browse_file__"
_BROWSE_FOLDER = "__browse_folder__"


class ElidedComboBox(QComboBox):
    """A picker that may be narrower than its longest item: the closed picker ends its text with
    "…" instead of cutting it at the arrow, and shows all of it as a tooltip; the open list is as
    wide as its longest item."""

    def __init__(self, parent: QWidget | None = None, min_chars: int = 16) -> None:
        super().__init__(parent)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(min_chars)
        self.currentIndexChanged.connect(lambda _index: self.setToolTip(self.currentText()))
        self.model().rowsInserted.connect(lambda *_: self._fit_list())

    def _fit_list(self) -> None:
        metrics = self.fontMetrics()
        widest = max((metrics.horizontalAdvance(self.itemText(i)) for i in range(self.count())), default=0)
        self.view().setMinimumWidth(widest + 4 * metrics.averageCharWidth())

    def paintEvent(self, event) -> None:
        painter = QStylePainter(self)
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, option)
        field = self.style().subControlRect(
            QStyle.ComplexControl.CC_ComboBox, option, QStyle.SubControl.SC_ComboBoxEditField, self
        )
        option.currentText = self.fontMetrics().elidedText(
            option.currentText, Qt.TextElideMode.ElideRight, field.width()
        )
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, option)


class ElidedLabel(QLabel):
    """One line of plain text that may be narrower than its text: it ends with "…" and shows all
    of it as a tooltip, rather than being cut off or widening its whole panel. ``setText`` takes
    the full text; ``full_text()`` gives it back."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self._own_tip = ""  # a tooltip set by the caller, shown when the text is not elided
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.setText(text)

    def full_text(self) -> str:
        return self._full

    def setText(self, text: str) -> None:
        self._full = text or ""
        self.updateGeometry()
        self._elide()

    def setToolTip(self, tip: str) -> None:
        self._own_tip = tip
        self._elide()

    def sizeHint(self) -> QSize:
        margins = self.contentsMargins()
        width = self.fontMetrics().horizontalAdvance(self._full) + margins.left() + margins.right()
        return QSize(width + 2 * self.margin(), super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:
        return QSize(self.fontMetrics().horizontalAdvance("…") * 3, super().minimumSizeHint().height())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._elide()

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:  # a bold font needs more room for the same text
            self.updateGeometry()
            self._elide()

    def _elide(self) -> None:
        width = self.contentsRect().width() - 2 * self.margin()
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, max(width, 0))
        super().setText(shown)
        super().setToolTip(self._full if shown != self._full else self._own_tip)


class DatasetPicker(ElidedComboBox):
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


class DevicePicker(ElidedComboBox):
    """Automatic, the CPU, each GPU, and all GPUs as data-parallel ranks; ``value()`` is the chosen
    item's data ("auto", "cpu", "cuda:N" or "all-gpus"), never its text.

    The all-GPUs item is disabled for a technique that does not train; when it was chosen, the
    picker shows automatic meanwhile and comes back to it for a technique that trains.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("devicePicker")
        self._wanted = AUTO  # what the user chose, even while it cannot be used
        self._ranks_allowed = True
        self.currentIndexChanged.connect(self._on_index)
        self.set_gpus([])

    def set_gpus(self, gpus: Sequence[dict], default: str | None = None) -> None:
        """``gpus`` as ``hardware.cuda_devices()`` lists them; ``default`` is chosen when listed."""
        wanted = default or self._wanted
        self.blockSignals(True)
        self.clear()
        for label, value in device_choices(gpus):
            self.addItem(label, value)
            self.setItemData(self.count() - 1, label, Qt.ItemDataRole.ToolTipRole)
        self.blockSignals(False)
        self._wanted = wanted
        self.allow_ranks(self._ranks_allowed)

    def value(self) -> str:
        return self.currentData() or AUTO

    def set_value(self, value: str) -> None:
        """Choose ``value``; automatic while it is not listed or cannot be used."""
        self._wanted = value
        self._show_wanted()

    def allow_ranks(self, allowed: bool) -> None:
        """Enable the all-GPUs item (when there is one) only for a technique that trains."""
        self._ranks_allowed = allowed
        index = self.findData(ALL_GPUS)
        if index >= 0:
            item = self.model().item(index)
            item.setEnabled(allowed)
            item.setToolTip(item.text() if allowed else "Only training steps run as data-parallel ranks.")
        self._show_wanted()

    def _show_wanted(self) -> None:
        index = self.findData(self._wanted)
        if index < 0 or not self.model().item(index).isEnabled():
            index = self.findData(AUTO)
        wanted = self._wanted
        self.setCurrentIndex(index)
        self._wanted = wanted  # a stand-in for a choice set aside does not replace it
        self.setToolTip(self.currentText())

    def _on_index(self, _index: int) -> None:
        self._wanted = self.value()


class OptimizePanel(QWidget):
    """Emits ``run_requested(technique, params, dataset, device, threads, name)``; ``device`` is
    "auto", "cpu", "cuda:N" or "all-gpus" (studio.ui.pool.placement_request reads it)."""

    run_requested = Signal(str, dict, str, str, int, str)
    add_to_recipe = Signal(str, dict)

    def sizeHint(self) -> QSize:  # the first layout's size, before one is remembered
        return QSize(360, 640)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._entries: dict[str, Any] = {}
        self._target_label: str | None = None
        self.target = ElidedLabel("Select a version in the lineage tree.")  # a name can be long
        self.target.setObjectName("optimizeTarget")
        self.technique = ElidedComboBox()
        self.technique.setObjectName("techniquePicker")
        self.parameters = QScrollArea()  # the technique's help and form
        self.parameters.setObjectName("parameterScroll")
        self.technique.currentIndexChanged.connect(self._on_technique)
        self.help = QLabel()
        self.help.setWordWrap(True)
        self.form = TechniqueForm()
        self.dataset = DatasetPicker()
        self.device = DevicePicker()
        self.device.currentIndexChanged.connect(lambda _index: self._update_device_hint())
        self.device_hint = QLabel("This step runs on the CPU: only training steps use the GPU.")
        self.device_hint.setObjectName("deviceHint")
        self.device_hint.setWordWrap(True)
        self.device_hint.setVisible(False)
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
        about = QWidget()  # the help scrolls with the form: a short window keeps the settings below
        about_layout = QVBoxLayout(about)
        about_layout.addWidget(self.help)
        about_layout.addWidget(self.form, 1)
        scroll = self.parameters
        scroll.setWidgetResizable(True)
        scroll.setWidget(about)
        # The one part that can shrink, so it is the one that must keep some height: four form
        # rows, never squeezed to nothing by the settings below it in a short window.
        scroll.setMinimumHeight(4 * self.fontMetrics().height() * 2)
        common = _form()
        common.addRow("Technique", self.technique)
        settings = _form()
        settings.addRow("Dataset", self.dataset)
        settings.addRow("Device", self.device)
        settings.addRow(self.device_hint)
        settings.addRow("Threads", self.threads)
        settings.addRow("New version name", self.name)
        buttons = QHBoxLayout()
        buttons.addWidget(self.recipe_button)
        buttons.addStretch(1)
        buttons.addWidget(self.run_button)
        _align_labels(common, settings)
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

    def set_devices(self, gpus: Sequence[dict], default: str = AUTO) -> None:
        """``gpus`` as ``hardware.cuda_devices()`` lists them; ``default`` is the preferred choice."""
        self.device.set_gpus(gpus, default)
        self._update_device_hint()

    def device_choice(self) -> str:
        return self.device.value()

    def _trains(self) -> bool:
        entry = self._entries.get(self.technique.currentData())
        return entry is not None and entry.technique is not None and bool(entry.technique.trains)

    def _update_device_hint(self) -> None:
        gpu = self.device.value().startswith("cuda")
        self.device_hint.setVisible(gpu and not self._trains())

    def set_target(self, label: str | None) -> None:
        self._target_label = label
        self.target.setText(f"Optimize {label}" if label else "Select a version in the lineage tree.")
        font = self.target.font()
        font.setBold(label is not None)
        self.target.setFont(font)
        self.run_button.setEnabled(label is not None and bool(self._entries))

    def _on_technique(self, *_args) -> None:
        self.parameters.verticalScrollBar().setValue(0)  # another technique's form starts at its top
        entry = self._entries.get(self.technique.currentData())
        self.device.allow_ranks(self._trains())
        self._update_device_hint()
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
            self.device.value(),
            self.threads.value(),
            self.name.text().strip(),
        )


def _form() -> QFormLayout:
    """A form whose fields stay as wide as the panel and whose labels line up in one column."""
    form = QFormLayout()
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    return form


def _align_labels(*forms: QFormLayout) -> None:
    """One label column for forms stacked with other widgets between them, so their fields line up."""
    labels = [
        item.widget()
        for form in forms
        for row in range(form.rowCount())
        if (item := form.itemAt(row, QFormLayout.ItemRole.LabelRole)) is not None and item.widget()
    ]
    width = max((label.sizeHint().width() for label in labels), default=0)
    for label in labels:
        label.setMinimumWidth(width)
