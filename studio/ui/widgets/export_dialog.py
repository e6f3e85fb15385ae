"""The export dialog: the choices of `studio export`, asked for one version.

The dialog only asks; the controller writes (off the UI thread) and the window shows the same
summary the command line prints. The file name starts as the command line's default,
``<project>/exports/<version-name>.onnx|.engine``, so both put a version in the same place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

SUFFIXES = {"onnx": ".onnx", "tensorrt": ".engine"}
_TENSORRT_NOTE = (
    "Where TensorRT or a CUDA GPU is missing, the studio writes the TensorRT-ready ONNX file and "
    "the trtexec command that builds the engine on a machine that has them."
)


class ExportDialog(QDialog):
    """Format, file and options for one version's export; ``request()`` once accepted."""

    def __init__(self, label: str, default_stem: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("exportDialog")
        self.setWindowTitle(f"Export {label}")
        self._stem = default_stem  # folder and name, without a suffix
        self.onnx = QRadioButton("ONNX file")
        self.tensorrt = QRadioButton("TensorRT engine")
        self.onnx.setChecked(True)
        formats = QHBoxLayout()
        formats.addWidget(self.onnx)
        formats.addWidget(self.tensorrt)
        formats.addStretch(1)
        self.path = QLineEdit(str(default_stem.with_suffix(".onnx")))
        self.path.setObjectName("exportPath")
        self.path.setMinimumWidth(360)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        where = QHBoxLayout()
        where.addWidget(self.path, 1)
        where.addWidget(browse)
        self.opset = QSpinBox()
        self.opset.setRange(0, 30)
        self.opset.setSpecialValueText("automatic")
        self.opset.setToolTip("The ONNX operator set to write; automatic keeps the model's own")
        self.dynamic_batch = QCheckBox("Let the batch dimension vary")
        self.min_batch, self.opt_batch, self.max_batch = (_batch_box(v) for v in (1, 1, 16))
        batches = QHBoxLayout()
        for name, box in (("min", self.min_batch), ("tuned for", self.opt_batch), ("max", self.max_batch)):
            batches.addWidget(QLabel(name))
            batches.addWidget(box)
        batches.addStretch(1)
        self.batches = QWidget()
        self.batches.setLayout(batches)
        batches.setContentsMargins(0, 0, 0, 0)
        self.note = QLabel(_TENSORRT_NOTE)
        self.note.setWordWrap(True)
        self.note.setEnabled(False)  # greyed: an explanation, not a control
        form = QFormLayout()
        form.addRow("Format", formats)
        form.addRow("File", where)
        form.addRow("Operator set", self.opset)
        form.addRow("", self.dynamic_batch)
        self.batch_label = QLabel("Engine batches")
        form.addRow(self.batch_label, self.batches)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.export_button.setDefault(True)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.note)
        layout.addWidget(self.buttons)
        self.tensorrt.toggled.connect(self._on_format)
        self.path.textChanged.connect(self._check)
        for box in (self.min_batch, self.opt_batch, self.max_batch):
            box.valueChanged.connect(self._check)
        self._on_format()

    def fmt(self) -> str:
        return "tensorrt" if self.tensorrt.isChecked() else "onnx"

    def request(self) -> tuple[str, Path, dict[str, Any]]:
        """(format, file, options) as ``export_onnx_version``/``export_tensorrt`` take them."""
        options: dict[str, Any] = {
            "opset": self.opset.value() or None,
            "dynamic_batch": self.dynamic_batch.isChecked(),
        }
        if self.fmt() == "tensorrt":
            options |= {
                "min_batch": self.min_batch.value(),
                "opt_batch": self.opt_batch.value(),
                "max_batch": self.max_batch.value(),
            }
        return self.fmt(), Path(self.path.text().strip()).expanduser(), options

    def _on_format(self) -> None:
        """The file follows the format while its name is still the default one."""
        tensorrt = self.tensorrt.isChecked()
        current = Path(self.path.text().strip())
        if current.with_suffix("") == self._stem:
            self.path.setText(str(self._stem.with_suffix(SUFFIXES[self.fmt()])))
        for widget in (self.batch_label, self.batches, self.note):
            widget.setVisible(tensorrt)
        self.adjustSize()
        self._check()

    def _check(self) -> None:
        text = self.path.text().strip()
        low, opt, high = self.min_batch.value(), self.opt_batch.value(), self.max_batch.value()
        ok = bool(text) and not (self.tensorrt.isChecked() and not low <= opt <= high)
        self.export_button.setEnabled(ok)
        self.export_button.setToolTip(
            "" if ok else "Choose a file, and engine batches with min ≤ tuned for ≤ max"
        )

    def _browse(self) -> None:
        suffix = SUFFIXES[self.fmt()]
        kind = "ONNX files (*.onnx)" if suffix == ".onnx" else "TensorRT engines (*.engine)"
        path, _ = QFileDialog.getSaveFileName(self, "Export to", self.path.text(), kind)
        if path:
            self.path.setText(path if path.endswith(suffix) else path + suffix)


def _batch_box(value: int) -> QSpinBox:
    box = QSpinBox()
    box.setRange(1, 4096)
    box.setValue(value)
    box.setAlignment(Qt.AlignmentFlag.AlignRight)
    return box
