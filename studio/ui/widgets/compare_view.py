"""Two or more versions side by side: every metric, with deltas against the first coloured; below,
the reference's and the last version's graphs side by side, or the last one's graph coloured by
what changed since the reference (the graph diff).

Each version is read off the UI thread; a reading that arrives after the user asked for another
pair is dropped, so a pane never shows a version it was not asked for. An explicit comparison
always reads its versions anew (another project may have the same version ids); new figures for
the same versions (a measurement finished) leave the drawings as they are.
"""

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
        self.show_diff = QCheckBox("Graph diff")
        self.show_diff.setToolTip(
            "The last version chosen drawn as one graph, its nodes coloured by what changed since the "
            "reference: added, reshaped (channels), requantized (FP32 → INT8, FP16); removed ones listed"
        )
        self.show_graphs.toggled.connect(lambda on: self._mode_toggled(self.show_graphs, on))
        self.show_diff.toggled.connect(lambda on: self._mode_toggled(self.show_diff, on))
        bar = QHBoxLayout()
        bar.addWidget(self.notes, 1)
        bar.addWidget(self.show_graphs)
        bar.addWidget(self.show_diff)
        bar.addWidget(export)
        self.split = QSplitter(Qt.Orientation.Vertical)
        self.split.addWidget(self.view)
        self.graphs: list = []  # two GraphViews, made when first asked for
        self.pair: QSplitter | None = None
        self.diff_view = None  # a GraphDiffView, made when first asked for
        self._drawn: dict[str, tuple[int, int] | None] = {"pair": None, "diff": None}
        self._ticket = 0
        self._loader = None
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.split, 1)
        layout.addLayout(bar)

    def set_graph_loader(self, loader) -> None:
        """``loader(version_id, on_view)``: reads a version off the UI thread, then calls
        ``on_view`` with its ``VersionView`` (graph file or the reason there is none)."""
        self._loader = loader

    # -- modes -------------------------------------------------------------------------------------

    def _mode_toggled(self, box: QCheckBox, on: bool) -> None:
        if on:
            self._ensure_pair() if box is self.show_graphs else self._ensure_diff()
            other = self.show_diff if box is self.show_graphs else self.show_graphs
            other.setChecked(False)  # one graph mode at a time
        if self.pair is not None:
            self.pair.setVisible(self.show_graphs.isChecked())
        if self.diff_view is not None:
            self.diff_view.setVisible(self.show_diff.isChecked())
        self._arrange()
        self._load(force=False)

    def _arrange(self) -> None:
        """The figures table as tall as its rows (it has a dozen), the drawing the rest."""
        shown = [w.isVisibleTo(self) for w in (self.pair, self.diff_view) if w is not None]
        if not any(shown):
            return
        view = self.view
        header = max(view.horizontalHeader().height(), view.horizontalHeader().sizeHint().height())
        rows = header + view.verticalHeader().length() + 2 * view.frameWidth() + 4
        total = max(self.split.height(), 3 * rows)
        table = min(rows, total // 2)
        self.split.setSizes([table, *((total - table) if on else 0 for on in shown)])

    def _ensure_pair(self) -> None:
        if self.pair is not None:
            return
        from studio.ui.graph_view import GraphView

        self.pair = QSplitter(Qt.Orientation.Horizontal)
        self.graphs = [GraphView(colour_by=False), GraphView(colour_by=False)]
        for graph in self.graphs:
            graph.prepare()
            self.pair.addWidget(graph)
        self.split.addWidget(self.pair)

    def _ensure_diff(self) -> None:
        if self.diff_view is not None:
            return
        from studio.ui.widgets.graph_diff_view import GraphDiffView

        self.diff_view = GraphDiffView()
        self.split.addWidget(self.diff_view)

    # -- reading the versions ------------------------------------------------------------------------

    def _load(self, *, force: bool) -> None:
        versions = self.model.versions
        if self._loader is None or len(versions) < 2:
            return
        pair = (versions[0].id, versions[-1].id)
        if force:
            self._drawn = {"pair": None, "diff": None}
        if self.show_graphs.isChecked() and self._drawn["pair"] != pair:
            self._drawn["pair"] = pair
            self._load_pair(versions[0], versions[-1])
        if self.show_diff.isChecked() and self._drawn["diff"] != pair:
            self._drawn["diff"] = pair
            self._load_diff(versions[0], versions[-1])

    def _load_pair(self, before: VersionFigures, after: VersionFigures) -> None:
        self._ticket += 1
        ticket = self._ticket
        for graph, version in zip(self.graphs, (before, after), strict=True):
            graph.show_message(f"Reading {version.label}…")
            self._loader(version.id, lambda view, g=graph, t=ticket: self._show(t, g, view))

    def _show(self, ticket: int, graph, view) -> None:
        if ticket != self._ticket:
            return  # read for a pair the user has since left
        if view.graph_file is not None:
            graph.show_file(view.graph_file, view.graph_extra)
        else:
            graph.show_message(view.problem or "This model cannot be drawn.")

    def _load_diff(self, before: VersionFigures, after: VersionFigures) -> None:
        ticket = self.diff_view.start(before.label, after.label)
        read: dict[str, object] = {}

        def arrived(which: str, view) -> None:
            read[which] = view
            if len(read) == 2:
                self.diff_view.show_pair(ticket, read["before"], read["after"])

        self._loader(before.id, lambda view: arrived("before", view))
        self._loader(after.id, lambda view: arrived("after", view))

    def shutdown(self) -> None:
        for graph in self.graphs:
            graph.shutdown()
        if self.diff_view is not None:
            self.diff_view.shutdown()

    # -- figures ----------------------------------------------------------------------------------------

    def set_versions(self, versions: Sequence[VersionFigures]) -> None:
        """The user's comparison: figures, and the graphs read anew."""
        self._set_figures(versions)
        self._load(force=True)

    def _set_figures(self, versions: Sequence[VersionFigures]) -> None:
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
        self._arrange()

    def refresh(self, figures: Sequence[VersionFigures]) -> None:
        """New figures for the same versions (a measurement finished): the drawings stand."""
        by_id = {f.id: f for f in figures}
        current = [by_id[v.id] for v in self.model.versions if v.id in by_id]
        if current:
            self._set_figures(current)
            self._load(force=False)

    def export_csv(self, path: Path) -> None:
        Path(path).write_text(self.model.to_csv(), encoding="utf-8")

    def _export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export comparison", "compare.csv", "CSV (*.csv)")
        if path:
            self.export_csv(Path(path))
