"""The recipe editor: an ordered list of technique steps, saved and loaded as recipe YAML.

Steps are validated against each technique's schema when added and again (with the chain
check: each step must accept what the one before produces) when saved, by the same parser the
command line uses, so a recipe saved here runs unchanged with ``studio recipe``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.ui.widgets.optimize_panel import ElidedLabel


@dataclass
class StepDraft:
    technique: str
    params: dict[str, Any] = field(default_factory=dict)
    name: str | None = None

    @property
    def label(self) -> str:
        changed = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.technique}" + (f"  ({changed})" if changed else "")


def changed_params(technique: str, params: dict[str, Any]) -> dict[str, Any]:
    """Validate ``params`` and keep only what differs from the defaults (what a recipe file shows)."""
    from studio.core.techniques import get_technique, parse_params

    parsed = parse_params(get_technique(technique), {k: v for k, v in params.items() if v is not None})
    return parsed.model_dump(mode="json", exclude_defaults=True)


def recipe_text(steps: list[StepDraft], data: str | None = None) -> str:
    """The YAML of a recipe; raises StudioError (file and line) when it could not run as written."""
    import yaml

    from studio.core.recipes import parse_recipe

    doc: dict[str, Any] = {}
    if data:
        doc["data"] = data
    doc["steps"] = [
        {
            "technique": s.technique,
            **({"params": s.params} if s.params else {}),
            **({"name": s.name} if s.name else {}),
        }
        for s in steps
    ]
    text = yaml.safe_dump(doc, sort_keys=False)
    return parse_recipe(text).to_yaml()


def read_recipe(path: Path) -> tuple[list[StepDraft], str | None]:
    from studio.core.recipes import load_recipe

    recipe = load_recipe(path)
    steps = [
        StepDraft(s.technique, s.params.model_dump(mode="json", exclude_defaults=True), s.name)
        for s in recipe.steps
    ]
    return steps, recipe.data


class RecipeEditor(QWidget):
    """``run_requested(steps)`` runs the recipe on the current version; errors go to ``failed``."""

    run_requested = Signal(list)
    edit_requested = Signal(str, dict)
    failed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path: Path | None = None
        self.data: str | None = None
        self.list = QListWidget()
        self.list.setObjectName("recipeSteps")
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # elided, with tooltips
        self.list.setDragDropMode(QListWidget.DragDropMode.InternalMove)
        self.list.itemDoubleClicked.connect(self._edit)
        self.preview = QPlainTextEdit()
        self.preview.setReadOnly(True)
        self.preview.setPlaceholderText("Add steps from the Optimize panel with “Add to recipe”.")
        self.title = ElidedLabel("Unsaved recipe")  # "Recipe: <file name>", which can be long
        self.title.setObjectName("recipeTitle")
        buttons = QGridLayout()
        for i, (text, slot) in enumerate(
            [
                ("Move up", lambda: self._move(-1)),
                ("Move down", lambda: self._move(1)),
                ("Remove", self._remove),
                ("Load…", self._load),
                ("Save…", self._save),
                ("Run on version", self._run),
            ]
        ):
            button = QPushButton(text)
            button.clicked.connect(slot)
            buttons.addWidget(button, i // 3, i % 3)
        self.list.model().rowsMoved.connect(lambda *_: self._refresh_preview())
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.list, 2)
        layout.addLayout(buttons)
        layout.addWidget(self.preview, 1)

    # -- steps ----------------------------------------------------------------------------------

    def steps(self) -> list[StepDraft]:
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())]

    def set_steps(self, steps: list[StepDraft]) -> None:
        self.list.clear()
        for step in steps:
            self._append(step)
        self._refresh_preview()

    def add_step(self, technique: str, params: dict[str, Any]) -> None:
        try:
            step = StepDraft(technique, changed_params(technique, params))
        except Exception as error:
            self.failed.emit(error)
            return
        self._append(step)
        self.list.setCurrentRow(self.list.count() - 1)
        self._refresh_preview()

    def _append(self, step: StepDraft) -> None:
        item = QListWidgetItem(step.label)
        item.setToolTip(step.label)  # the list elides a step with many changed parameters
        item.setData(Qt.ItemDataRole.UserRole, step)
        self.list.addItem(item)

    def _move(self, delta: int) -> None:
        row = self.list.currentRow()
        target = row + delta
        if row < 0 or not 0 <= target < self.list.count():
            return
        item = self.list.takeItem(row)
        self.list.insertItem(target, item)
        self.list.setCurrentRow(target)
        self._refresh_preview()

    def _remove(self) -> None:
        row = self.list.currentRow()
        if row >= 0:
            self.list.takeItem(row)
            self._refresh_preview()

    def _edit(self, item: QListWidgetItem) -> None:
        step: StepDraft = item.data(Qt.ItemDataRole.UserRole)
        self.edit_requested.emit(step.technique, dict(step.params))

    def _refresh_preview(self) -> None:
        steps = self.steps()
        if not steps:
            self.preview.clear()
            return
        try:
            self.preview.setPlainText(recipe_text(steps, self.data))
        except Exception as error:  # shown in place: a recipe being edited may be incomplete
            self.preview.setPlainText(f"# This recipe cannot run yet:\n# {error}")

    # -- files ----------------------------------------------------------------------------------

    def save_to(self, path: Path) -> None:
        from studio.core.files import atomic_write_text

        atomic_write_text(Path(path), recipe_text(self.steps(), self.data))
        self.path = Path(path)
        self.title.setText(f"Recipe: {self.path.name}")

    def load_from(self, path: Path) -> None:
        steps, self.data = read_recipe(Path(path))
        self.path = Path(path)
        self.set_steps(steps)
        self.title.setText(f"Recipe: {self.path.name}")

    def _save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save recipe", str(self.path or "recipe.yaml"), "Recipes (*.yaml *.yml)"
        )
        if path:
            try:
                self.save_to(Path(path))
            except Exception as error:
                self.failed.emit(error)

    def _load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Load recipe", "", "Recipes (*.yaml *.yml);;All files (*)"
        )
        if path:
            try:
                self.load_from(Path(path))
            except Exception as error:
                self.failed.emit(error)

    def _run(self) -> None:
        steps = self.steps()
        if steps:
            self.run_requested.emit(steps)
