"""Every job of the project as a table row; live figures (progress, ETA) come from job events.

Rows start from the store's records (so jobs of earlier sessions show with their final state)
and are then kept current by events, never by polling the database. Each running row keeps an
``EtaEstimator`` fed with the time its progress events arrive, the same estimate the command line
prints, and counts it down between events.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from studio.jobs.events import EtaEstimator, JobEvent, duration_text

if TYPE_CHECKING:
    from studio.store import JobRecord

JOB_ID_ROLE = Qt.ItemDataRole.UserRole + 1
PROGRESS_ROLE = Qt.ItemDataRole.UserRole + 2
COLUMNS = ("#", "Job", "State", "Device", "Progress", "ETA", "Elapsed", "Message")
PROGRESS_COLUMN = COLUMNS.index("Progress")
ACTIVE_STATES = ("queued", "running")

Index = QModelIndex | QPersistentModelIndex
ROOT = QModelIndex()  # the invisible root, as a default argument


@dataclass
class JobRow:
    id: int
    kind: str
    technique: str | None
    input_version_id: int | None
    state: str
    device: str | None
    progress: float
    message: str
    error: str | None
    log_path: str | None
    started_at: datetime | None
    finished_at: datetime | None
    eta_s: float | None = None  # the estimate when the last progress event arrived
    estimator: EtaEstimator = field(default_factory=EtaEstimator, repr=False, compare=False)

    @classmethod
    def of(cls, r: JobRecord) -> JobRow:
        return cls(
            r.id,
            r.kind,
            r.technique,
            r.input_version_id,
            r.state,
            r.device,
            r.progress,
            r.message,
            r.error,
            r.log_path,
            r.started_at,
            r.finished_at,
        )

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def title(self) -> str:
        on = "" if self.input_version_id is None else f" v{self.input_version_id}"
        if self.kind == "optimize":
            return f"{self.technique or 'step'} on{on}"
        return f"{self.kind}{on}"

    def elapsed_s(self, now: datetime | None = None) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or now or datetime.now(timezone.utc)
        return max(0.0, (_aware(end) - _aware(self.started_at)).total_seconds())

    def eta(self, clock: float | None = None) -> float | None:
        """Seconds left at ``clock`` (``time.monotonic()`` by default); None when not known."""
        if self.state != "running":
            return None
        return self.estimator.eta(time.monotonic() if clock is None else clock)

    def apply(self, event: JobEvent, clock: float | None = None) -> None:
        """Take in one event; ``clock`` is when it arrived (``time.monotonic()`` by default)."""
        now = datetime.now(timezone.utc)
        clock = time.monotonic() if clock is None else clock
        self.state = event.state
        if event.device:
            self.device = event.device
        if event.kind == "started":
            self.started_at = self.started_at or now
            self.estimator.reset()
            self.estimator.update(clock, 0.0)
        elif event.kind == "progress":
            self.progress = event.fraction or 0.0
            self.message = event.message
            self.eta_s = self.estimator.update(clock, self.progress)
        if event.final:
            self.finished_at = now
            self.eta_s = None
            self.started_at = self.started_at or now
            if event.kind == "succeeded":
                self.progress, self.message = 1.0, "done"
            elif event.kind == "failed":
                self.error = event.error
                self.message = event.error or "failed"
            elif event.kind == "cancelled":
                self.message = "cancelled by the user"
            else:
                self.message = event.message or event.kind


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class JobsTableModel(QAbstractTableModel):
    """Newest job first."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._rows: list[JobRow] = []

    def set_records(self, records: list[JobRecord]) -> None:
        self.beginResetModel()
        self._rows = [JobRow.of(r) for r in sorted(records, key=lambda r: -r.id)]
        self.endResetModel()

    def add_record(self, record: JobRecord) -> None:
        if any(row.id == record.id for row in self._rows):
            return
        self.beginInsertRows(QModelIndex(), 0, 0)
        self._rows.insert(0, JobRow.of(record))
        self.endInsertRows()

    def apply(self, event: JobEvent, clock: float | None = None) -> bool:
        """Update the job's row; False when the job is not in the table (the caller adds it)."""
        for i, row in enumerate(self._rows):
            if row.id == event.job_id:
                row.apply(event, clock)
                self.dataChanged.emit(self.index(i, 0), self.index(i, len(COLUMNS) - 1))
                return True
        return False

    def tick(self) -> None:
        """Repaint the ETA and elapsed columns of running jobs (once a second): both are clocks."""
        first, last = COLUMNS.index("ETA"), COLUMNS.index("Elapsed")
        for i, row in enumerate(self._rows):
            if row.state == "running":
                self.dataChanged.emit(self.index(i, first), self.index(i, last))

    def row_at(self, row: int) -> JobRow:
        return self._rows[row]

    def find(self, job_id: int) -> JobRow | None:
        return next((r for r in self._rows if r.id == job_id), None)

    def active_count(self) -> int:
        return sum(1 for r in self._rows if r.active)

    def rowCount(self, parent: Index = ROOT) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = ROOT) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return _cell(row, index.column())
        if role == JOB_ID_ROLE:
            return row.id
        if role == PROGRESS_ROLE:
            return row.progress
        if role == Qt.ItemDataRole.ToolTipRole:
            return row.error or row.message or None
        return None


def _cell(row: JobRow, column: int) -> str:
    name = COLUMNS[column]
    if name == "#":
        return str(row.id)
    if name == "Job":
        return row.title
    if name == "State":
        return row.state
    if name == "Device":  # the worker's device once one takes the job; "cuda" waits for any free GPU
        return {None: "any", "": "any", "cuda": "any GPU"}.get(row.device, row.device)
    if name == "Progress":
        return f"{100 * row.progress:.0f} %"
    if name == "ETA":
        return (duration_text(row.eta()) or "unknown") if row.state == "running" else ""
    if name == "Elapsed":
        return duration_text(row.elapsed_s())
    return (row.error or row.message or "").splitlines()[0] if (row.error or row.message) else ""
