"""A parameter form built from a technique's JSON schema (pydantic's ``model_json_schema()``).

Plugins declare parameters once, as a pydantic model; the form reads types, ranges, defaults,
choices and help text from the schema, so a third-party technique gets a proper form without
writing any Qt. The form only collects values: the technique's own model validates them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

_INT_LIMIT = 2**31 - 1
_FLOAT_LIMIT = 1e12


@dataclass(frozen=True)
class Field:
    """One property of the schema, normalised: optional-ness unwrapped, ``$ref`` resolved."""

    name: str
    title: str
    kind: str  # "integer", "number", "boolean", "enum", "string", "array"
    default: Any
    optional: bool
    help: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive_min: bool = False
    exclusive_max: bool = False
    choices: tuple[Any, ...] = ()
    item_kind: str = "string"
    # The value that leaves the choice to the technique (a learning rate of 0), shown as "automatic"
    # rather than as a figure: a parameter declares it with json_schema_extra={"automatic": 0}.
    automatic: Any = None


def model_defaults(params_class) -> dict[str, Any]:
    """Every default of a pydantic model, ``default_factory`` ones included (the schema omits those)."""
    out = {}
    for name, info in params_class.model_fields.items():
        if not info.is_required():
            out[name] = info.get_default(call_default_factory=True)
    return out


def schema_fields(schema: dict) -> list[Field]:
    defs = schema.get("$defs", {})
    return [_field(name, prop, defs) for name, prop in schema.get("properties", {}).items()]


def _resolve(prop: dict, defs: dict) -> dict:
    ref = prop.get("$ref")
    if ref:
        return {**defs.get(ref.rsplit("/", 1)[-1], {}), **{k: v for k, v in prop.items() if k != "$ref"}}
    return prop


def _field(name: str, prop: dict, defs: dict) -> Field:
    prop = _resolve(prop, defs)
    optional = False
    if "anyOf" in prop:
        options = [_resolve(p, defs) for p in prop["anyOf"]]
        concrete = [p for p in options if p.get("type") != "null"]
        optional = len(concrete) < len(options)
        prop = {**(concrete[0] if concrete else {}), **{k: v for k, v in prop.items() if k != "anyOf"}}
    kind = "enum" if "enum" in prop else prop.get("type", "string")
    items = _resolve(prop.get("items", {}), defs)
    low = prop.get("minimum", prop.get("exclusiveMinimum"))
    high = prop.get("maximum", prop.get("exclusiveMaximum"))
    return Field(
        name=name,
        title=prop.get("title") or name.replace("_", " ").capitalize(),
        kind=kind,
        default=prop.get("default"),
        optional=optional,
        help=prop.get("description", ""),
        minimum=low,
        maximum=high,
        exclusive_min="exclusiveMinimum" in prop,
        exclusive_max="exclusiveMaximum" in prop,
        choices=tuple(prop.get("enum", ())),
        item_kind="enum" if "enum" in items else items.get("type", "string"),
        automatic=prop.get("automatic"),
    )


class _Editor:
    """One field's widget(s) and how to read and write its value."""

    def __init__(self, field: Field, changed) -> None:
        self.field = field
        self.widget = self._make(field)
        self.enabler: QCheckBox | None = None
        self._connect(changed)
        self.set(field.default)

    def _make(self, f: Field) -> QWidget:
        if f.kind == "boolean":
            return QCheckBox()
        if f.kind == "enum":
            box = QComboBox()
            for choice in f.choices:
                box.addItem(str(choice), choice)
            return box
        if f.kind == "integer":
            spin = QSpinBox()
            low = -_INT_LIMIT if f.minimum is None else math.floor(f.minimum) + int(f.exclusive_min)
            high = _INT_LIMIT if f.maximum is None else math.ceil(f.maximum) - int(f.exclusive_max)
            spin.setRange(max(low, -_INT_LIMIT), min(high, _INT_LIMIT))
            return _automatic(spin, f)
        if f.kind == "number":
            return _automatic(_number_box(f), f)
        line = QLineEdit()
        if f.kind == "array":
            hint = ", ".join(map(str, _array_choices(f))) or "comma-separated"
            line.setPlaceholderText(hint)
        return line

    def _connect(self, changed) -> None:
        w = self.widget
        signal = {
            QCheckBox: "toggled",
            QComboBox: "currentIndexChanged",
            QSpinBox: "valueChanged",
            QDoubleSpinBox: "valueChanged",
            _FloatBox: "valueChanged",
            QLineEdit: "textChanged",
        }[type(w)]
        getattr(w, signal).connect(lambda *_: changed())

    def get(self) -> Any:
        if self.enabler is not None and not self.enabler.isChecked():
            return None
        w, f = self.widget, self.field
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, QComboBox):
            return w.currentData()
        if isinstance(w, (QSpinBox, QDoubleSpinBox)):
            return w.value()
        text = w.text().strip()
        if f.kind == "array":
            return [_parse_item(part.strip(), f.item_kind) for part in text.split(",") if part.strip()]
        return text

    def set(self, value: Any) -> None:
        if self.enabler is not None:
            self.enabler.setChecked(value is not None)
        if value is None:
            return
        w = self.widget
        if isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, QComboBox):
            w.setCurrentIndex(max(0, w.findData(value)))
        elif isinstance(w, QSpinBox):
            w.setValue(int(value))
        elif isinstance(w, QDoubleSpinBox):
            w.setValue(float(value))
        elif isinstance(value, (list, tuple)):
            w.setText(", ".join(map(str, value)))
        else:
            w.setText(str(value))


class _FloatBox(QDoubleSpinBox):
    """Six decimals (a cosine floor of 0.99995 must survive), shown without trailing zeros."""

    def textFromValue(self, value: float) -> str:
        text = f"{value:.{self.decimals()}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text


def _number_box(f: Field) -> QDoubleSpinBox:
    spin = _FloatBox()
    low = -_FLOAT_LIMIT if f.minimum is None else float(f.minimum)
    high = _FLOAT_LIMIT if f.maximum is None else float(f.maximum)
    span = high - low if math.isfinite(high - low) else _FLOAT_LIMIT
    spin.setDecimals(6)
    step = 1e-6  # an open interval (0, 1) becomes [0.000001, 0.999999]: the nearest values shown
    spin.setRange(low + step * f.exclusive_min, high - step * f.exclusive_max)
    spin.setSingleStep(0.01 if span <= 2 else 0.1 if span <= 100 else 1.0)
    return spin


def _automatic(spin, f: Field):
    """Show the technique's "automatic" value as that word; a spin box can name only its minimum."""
    if f.automatic is not None and float(f.automatic) == spin.minimum():
        spin.setSpecialValueText("automatic")
    return spin


def _array_choices(f: Field) -> tuple:
    return f.choices if f.item_kind == "enum" else ()


def _parse_item(text: str, kind: str) -> Any:
    if kind == "integer":
        return int(text)
    if kind == "number":
        return float(text)
    return text


class TechniqueForm(QWidget):
    """``set_schema(schema)``, then ``values()``; ``changed`` fires on every edit."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QFormLayout(self)
        self._layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        # A parameter's title can be long: in a narrow panel its field goes below it rather than
        # the form growing wider than the panel and scrolling sideways.
        self._layout.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self._editors: dict[str, _Editor] = {}

    def set_schema(self, schema: dict, defaults: dict[str, Any] | None = None) -> None:
        """Build the form; ``defaults`` fills in what a JSON schema cannot hold (``default_factory``)."""
        while self._layout.rowCount():
            self._layout.removeRow(0)
        self._editors = {}
        for field in schema_fields(schema):
            if defaults and field.name in defaults and field.default is None:
                field = dataclasses.replace(field, default=defaults[field.name])
            editor = _Editor(field, self.changed.emit)
            label = QLabel(field.title)
            row: QWidget = editor.widget
            if field.optional:
                row = _with_enabler(editor)
            for widget in (label, editor.widget):
                widget.setToolTip(_tooltip(field))
            editor.widget.setObjectName(f"param_{field.name}")
            self._layout.addRow(label, row)
            self._editors[field.name] = editor

    def values(self) -> dict[str, Any]:
        """Every field's value (None for an optional field left unset); lists parsed from comma text."""
        return {name: editor.get() for name, editor in self._editors.items()}

    def set_values(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if name in self._editors:
                self._editors[name].set(value)

    def editor(self, name: str) -> QWidget:
        return self._editors[name].widget

    def field_names(self) -> list[str]:
        return list(self._editors)


def _with_enabler(editor: _Editor) -> QWidget:
    """An optional value: a check box turns the editor on; off means "not set" (None)."""
    holder = QWidget()
    layout = QHBoxLayout(holder)
    layout.setContentsMargins(0, 0, 0, 0)
    box = QCheckBox()
    box.setToolTip("Set a value (unchecked: the technique decides)")
    box.toggled.connect(editor.widget.setEnabled)
    editor.enabler = box
    editor.widget.setEnabled(editor.field.default is not None)
    box.setChecked(editor.field.default is not None)
    layout.addWidget(box)
    layout.addWidget(editor.widget, 1)
    return holder


def _tooltip(field: Field) -> str:
    parts = [field.help] if field.help else []
    if field.minimum is not None or field.maximum is not None:
        lo = "–∞" if field.minimum is None else f"{field.minimum:g}"
        hi = "∞" if field.maximum is None else f"{field.maximum:g}"
        left = "(" if field.exclusive_min or field.minimum is None else "["
        right = ")" if field.exclusive_max or field.maximum is None else "]"
        parts.append(f"Range {left}{lo}, {hi}{right}")
    if field.default not in (None, "", []):
        parts.append(f"Default: {field.default}")
    return "\n".join(parts)
