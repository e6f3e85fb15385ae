"""Two or more versions side by side: every metric, with deltas against the first coloured."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from studio.ui.models.compare_model import CompareModel
from studio.ui.models.figures import VersionFigures

HINT = (
    "Select two or more versions in the lineage tree (Ctrl+click) and choose "
    "<b>Compare</b> (Ctrl+Shift+C). The first one selected is the reference."
)


class CompareView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = CompareModel(self)
        self.title = QLabel(HINT)
        self.title.setWordWrap(True)
        self.view = QTableView()
        self.view.setObjectName("compareTable")
        self.view.setModel(self.model)
        self.view.setWordWrap(True)
        self.view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.notes = QLabel()
        self.notes.setWordWrap(True)
        export = QPushButton("Export CSV…")
        export.clicked.connect(self._export)
        self.show_graphs = QCheckBox("Graphs side by side")
        self.show_graphs.setToolTip("The reference and the last version chosen, drawn by Netron")
        self.show_graphs.toggled.connect(self._graphs_toggled)
        bar = QHBoxLayout()
        bar.addWidget(self.notes, 1)
        bar.addWidget(self.show_graphs)
        bar.addWidget(export)
        self.split = QSplitter(Qt.Orientation.Vertical)
        self.split.addWidget(self.view)
        self.graphs: list = []  # two GraphViews, made when first asked for
        self._shown: list[int | None] = [None, None]  # the versions they draw
        self._loader = None
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.split, 1)
        layout.addLayout(bar)

    def set_graph_loader(self, loader) -> None:
        """``loader(version_id, on_view)``: reads a version off the UI thread, then calls
        ``on_view`` with its ``VersionView`` (graph file or the reason there is none)."""
        self._loader = loader

    def _graphs_toggled(self, on: bool) -> None:
        if on and not self.graphs:
            from studio.ui.graph_view import GraphView

            pair = QSplitter(Qt.Orientation.Horizontal)
            self.graphs = [GraphView(), GraphView()]
            for graph in self.graphs:
                graph.prepare()
                pair.addWidget(graph)
            self.split.addWidget(pair)
            self.split.setSizes([1, 2])
        if self.graphs:
            self.graphs[0].parentWidget().setVisible(on)
        self._load_graphs()

    def _load_graphs(self) -> None:
        versions = self.model.versions
        if not (self.show_graphs.isChecked() and self.graphs and self._loader and len(versions) >= 2):
            return
        for i, (graph, version) in enumerate(zip(self.graphs, (versions[0], versions[-1]), strict=True)):
            if self._shown[i] == version.id:
                continue  # new figures for the same versions: the drawing stands
            self._shown[i] = version.id
            graph.show_message(f"Reading {version.label}…")
            self._loader(version.id, lambda view, g=graph: _show(g, view))

    def shutdown(self) -> None:
        for graph in self.graphs:
            graph.shutdown()

    def set_versions(self, versions: Sequence[VersionFigures]) -> None:
        self.model.set_versions(versions)
        if len(versions) < 2:
            self.title.setText(HINT)
            self.notes.clear()
            return
        names = ", ".join(v.label for v in versions[1:])
        self.title.setText(f"<b>{names}</b> against <b>{versions[0].label}</b> (green: better, red: worse)")
        self.notes.setText(
            "<br>".join(f"<b>{v.label}</b>: {v.notes.splitlines()[0]}" for v in versions if v.notes)
        )
        self.view.resizeRowsToContents()
        self._load_graphs()

    def refresh(self, figures: Sequence[VersionFigures]) -> None:
        """New figures for the same versions (a measurement finished)."""
        by_id = {f.id: f for f in figures}
        current = [by_id[v.id] for v in self.model.versions if v.id in by_id]
        if current:
            self.set_versions(current)

    def export_csv(self, path: Path) -> None:
        Path(path).write_text(self.model.to_csv(), encoding="utf-8")

    def _export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export comparison", "compare.csv", "CSV (*.csv)")
        if path:
            self.export_csv(Path(path))


def _show(graph, view) -> None:
    if view.graph_file is not None:
        graph.show_file(view.graph_file, view.graph_extra)
    else:
        graph.show_message(view.problem or "This model cannot be drawn.")
