"""Every job: state, device, a progress bar with ETA, elapsed time, cancel, and its log.

The log pane follows the selected job's log file while the job runs: once a second it reads only
the bytes written since the last look (``LogReader``), so a long log costs the UI thread a small
read, never a reload; on selection it shows the last 64 KiB.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QModelIndex, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHBoxLayout,
    QHeaderView,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from studio.jobs.events import JobEvent
from studio.jobs.logs import LogReader, job_log_path
from studio.ui.models.jobs_model import COLUMNS, JOB_ID_ROLE, PROGRESS_COLUMN, PROGRESS_ROLE, JobsTableModel
from studio.ui.widgets.optimize_panel import ElidedLabel

if TYPE_CHECKING:
    from studio.store import JobRecord

LOG_TAIL_BYTES = 64 * 1024
LOG_MAX_LINES = 20_000  # the pane forgets its oldest lines past this; the file keeps them
VISIBLE_ROWS = 4  # the panel's first height, in job rows


class ProgressDelegate(QStyledItemDelegate):
    """Draws the progress column as the platform's progress bar."""

    def paint(self, painter, option, index: QModelIndex) -> None:
        bar = QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(2, 3, -2, -3)
        bar.minimum, bar.maximum = 0, 1000
        bar.progress = int(1000 * (index.data(PROGRESS_ROLE) or 0.0))
        bar.text = index.data(Qt.ItemDataRole.DisplayRole)
        bar.textVisible = True
        bar.textAlignment = Qt.AlignmentFlag.AlignCenter
        bar.state = QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Horizontal
        bar.palette = option.palette
        bar.fontMetrics = option.fontMetrics
        bar.direction = option.direction
        style = option.widget.style() if option.widget else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, option.widget)


class ShareSplitter(QSplitter):
    """Two panes that keep their proportions when resized. A plain splitter hands every change
    of size to its panes by stretch factor, so a panel laid out wide and then shrunk squeezes
    one pane to nothing; here the first pane keeps ``share`` of the room, and dragging the handle
    sets a new share."""

    def __init__(self, orientation: Qt.Orientation, share: float, parent: QWidget | None = None) -> None:
        super().__init__(orientation, parent)
        self.share = share
        self.setChildrenCollapsible(False)
        self.splitterMoved.connect(lambda *_: self._take_share())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._give_share()

    def restoreState(self, state) -> bool:
        restored = super().restoreState(state)
        if restored:
            self._take_share()
        return restored

    def _take_share(self) -> None:
        sizes = self.sizes()
        if len(sizes) == 2 and sum(sizes) > 0:
            self.share = sizes[0] / sum(sizes)

    def _give_share(self) -> None:
        if self.count() != 2:
            return
        horizontal = self.orientation() == Qt.Orientation.Horizontal
        room = (self.width() if horizontal else self.height()) - self.handleWidth()
        first = round(self.share * room)
        self.setSizes([first, room - first])


class JobsPanel(QWidget):
    cancel_requested = Signal(int)
    summary_changed = Signal(str)  # "Jobs: 1 running, 2 queued", for the status bar

    def sizeHint(self) -> QSize:
        """The first layout's size, before one is remembered: four rows of jobs, so an empty or
        short list leaves the height to the graph."""
        return QSize(1000, self._rows_height(VISIBLE_ROWS))

    def minimumSizeHint(self) -> QSize:
        return QSize(320, self._rows_height(1))

    def _rows_height(self, rows: int) -> int:
        frame = 2 * self.view.frameWidth()
        return self.view.horizontalHeader().sizeHint().height() + rows * self._row_height() + frame

    def _row_height(self) -> int:
        return self.view.fontMetrics().height() + 8  # the progress bar's text with room around it

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = JobsTableModel(self)
        self.view = QTableView()
        self.view.setObjectName("jobsTable")
        self.view.setModel(self.model)
        self.view.setItemDelegateForColumn(PROGRESS_COLUMN, ProgressDelegate(self.view))
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.verticalHeader().hide()
        self.view.setAlternatingRowColors(True)
        self.view.verticalHeader().setDefaultSectionSize(self._row_height())
        self.view.verticalHeader().setMinimumSectionSize(self._row_height())
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COLUMNS.index("Message"), QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(PROGRESS_COLUMN, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(PROGRESS_COLUMN, 11 * self.view.fontMetrics().averageCharWidth())
        self.cancel_button = QPushButton("Cancel job")
        self.cancel_button.setObjectName("cancelJobButton")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self._cancel_selected)
        self.status = ElidedLabel("No jobs yet")
        self.status.setObjectName("jobsStatus")
        self.log = QPlainTextEdit()
        self.log.setObjectName("jobLog")
        self.log.setReadOnly(True)
        self.log.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log.setPlaceholderText("Select a job to see its log.")
        self.log.setMaximumBlockCount(LOG_MAX_LINES)
        self._build_layout()
        self.view.selectionModel().currentRowChanged.connect(lambda *_: self._selection_changed())
        self.logs_dir: Path | None = None  # the project's job logs, one file per job
        self._log_reader: LogReader | None = None  # the shown log, read on from where it was
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._tick)

    def _build_layout(self) -> None:
        """The table and the selected job's log side by side, not stacked: the panel spans the
        window's width but should take little of its height. The count and Cancel sit above the
        log, beside the rows they act on."""
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 0, 0, 0)
        bar.addWidget(self.status, 1)
        bar.addWidget(self.cancel_button)
        self.log.setMinimumHeight(self.log.fontMetrics().lineSpacing() + 2 * self.log.frameWidth() + 8)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.setSpacing(2)
        side_layout.addLayout(bar)
        side_layout.addWidget(self.log, 1)
        self.view.setMinimumHeight(self._rows_height(1))
        self.split = ShareSplitter(Qt.Orientation.Horizontal, 2 / 3)  # two thirds to the table
        self.split.setObjectName("jobsSplitter")
        self.split.addWidget(self.view)
        self.split.addWidget(side)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.split)

    # -- feeding it ------------------------------------------------------------------------------

    def set_records(self, records: list[JobRecord]) -> None:
        self.model.set_records(records)
        self._after_change()

    def add_record(self, record: JobRecord) -> None:
        self.model.add_record(record)
        self._after_change()

    def apply(self, event: JobEvent) -> bool:
        found = self.model.apply(event)
        self._after_change()
        if found and event.job_id == self.selected_id():
            self._update_cancel()
            if event.kind == "started" or event.final:
                self._follow_log()  # the first lines, or the last ones and how it ended
        return found

    def select_job(self, job_id: int) -> None:
        for row in range(self.model.rowCount()):
            if self.model.row_at(row).id == job_id:
                self.view.selectRow(row)
                return

    def selected_id(self) -> int | None:
        index = self.view.selectionModel().currentIndex()
        return index.data(JOB_ID_ROLE) if index.isValid() else None

    # -- reacting --------------------------------------------------------------------------------

    def _after_change(self) -> None:
        active = self.model.active_count()
        total = self.model.rowCount()
        self.status.setText(f"{active} running or queued, {total} in all" if total else "No jobs yet")
        running = sum(self.model.row_at(i).state == "running" for i in range(total))
        queued = active - running
        self.summary_changed.emit(
            f"Jobs: {running} running, {queued} queued" if active else "No jobs running"
        )
        if active and not self._timer.isActive():
            self._timer.start()
        elif not active:
            self._timer.stop()
        self._update_cancel()

    def _tick(self) -> None:
        self.model.tick()
        job = self.selected_id()
        row = None if job is None else self.model.find(job)
        if row is not None and row.state == "running":
            self._follow_log()

    def _update_cancel(self) -> None:
        job = self.selected_id()
        row = None if job is None else self.model.find(job)
        self.cancel_button.setEnabled(row is not None and row.active)

    def _selection_changed(self) -> None:
        self._update_cancel()
        self._follow_log()

    def _follow_log(self) -> None:
        """Show the selected job's log: from its tail when the job changed, else only what is new."""
        job = self.selected_id()
        row = None if job is None else self.model.find(job)
        if row is None or self.logs_dir is None:
            self._log_reader = None
            self.log.clear()
            self.log.setPlaceholderText("Select a job to see its log.")
            return
        path = job_log_path(self.logs_dir, job)  # the project's own folder, never a path from the database
        if self._log_reader is None or self._log_reader.path != path:
            self._log_reader = LogReader(path, tail=LOG_TAIL_BYTES, limit=LOG_TAIL_BYTES)
            self.log.clear()
            self.log.setPlaceholderText("(nothing logged yet)")
        finished = not row.active
        text = self._log_reader.read(final=finished)
        if self._log_reader.restarted:
            self.log.clear()
        if finished and row.error and row.error not in self.log.toPlainText() + text:
            text += f"{row.error}\n"  # how it ended, when the job could not write it itself
        if text:
            self._append_log(text)

    def _append_log(self, text: str) -> None:
        bar = self.log.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 2  # someone reading further up keeps their place
        self.log.appendPlainText(text.removesuffix("\n"))
        if at_end:
            bar.setValue(bar.maximum())

    def _cancel_selected(self) -> None:
        job = self.selected_id()
        if job is not None:
            self.cancel_button.setEnabled(False)
            self.cancel_requested.emit(job)
